"""The rule that combines the crops of one person into one score per candidate."""

from __future__ import annotations

import pytest

from core.recognition import MIN_CROP_WEIGHT, combine


def test_one_crop_is_its_own_score_and_two_are_a_weighted_mean() -> None:
    assert combine([0.61], [0.3]) == pytest.approx(0.61)
    assert combine([None], [1.0]) == 0.0
    assert combine([0.8, 0.5], [1.0, 0.5]) == pytest.approx((0.8 + 0.25) / 1.5)
    # Two crops cannot be trimmed: a lucky one is at least halved by a miss.
    assert combine([0.9, None], [1.0, 1.0]) == pytest.approx(0.45)


def test_one_lucky_or_unlucky_crop_cannot_decide_alone() -> None:
    for n in range(3, 11):
        good, bad = [0.62] * (n - 1), [0.2] * (n - 1)
        # An unlucky frame (a miss, or 0.1) does not pull a clear match down ...
        assert combine([None, *good], [1.0] * n) == pytest.approx(0.62)
        assert combine([0.1, *good], [1.0] * n) == pytest.approx(0.62)
        # ... and a lucky one does not lift a stranger up, however good its quality.
        assert combine([0.95, *bad], [1.0, *[0.1] * (n - 1)]) == pytest.approx(0.2)


def test_ten_crops_trim_two_from_each_end() -> None:
    sims = [0.0, 0.05, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.99, 0.98]
    assert combine(sims, [1.0] * 10) == pytest.approx(0.5)


def test_quality_weights_the_crops_that_remain() -> None:
    sims = [0.3, 0.7, 0.5, 0.9, 0.1]  # 0.1 and 0.9 are trimmed
    score = combine(sims, [0.1, 1.0, 0.0, 1.0, 1.0])
    floor = MIN_CROP_WEIGHT
    assert score == pytest.approx((0.3 * 0.1 + 0.7 * 1.0 + 0.5 * floor) / (0.1 + 1.0 + floor))
    assert score > combine(sims, [1.0] * 5)  # the sharp 0.7 crop counts most


def test_combine_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        combine([], [])
    with pytest.raises(ValueError):
        combine([0.5, 0.6], [1.0])
