"""The tracker on synthetic motion: crossing, occlusion, leaving and returning, emission limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from core.models import BoundingBox, DetectedFace
from deeplens_lambda.tracker import Emission, Tracker, TrackerConfig

FPS = 15.0
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FRAME = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)


def box_at(cx: float, cy: float, size: int = 120) -> BoundingBox:
    return BoundingBox(round(cx - size / 2), round(cy - size / 2), size, size)


def run(
    tracker: Tracker, per_frame: list[list[BoundingBox]]
) -> tuple[list[dict[str, BoundingBox]], list[Emission]]:
    """Feed detections frame by frame; return the track id -> box map after each frame."""
    seen: list[dict[str, BoundingBox]] = []
    emissions: list[Emission] = []
    for i, boxes in enumerate(per_frame):
        index = tracker.step()
        when = T0 + timedelta(seconds=i / FPS)
        emissions += tracker.update([DetectedFace(b, 0.9) for b in boxes], FRAME, when, frame_index=index)
        seen.append({tid: t.bbox for tid, t in tracker.tracks.items() if t.last_frame == index})
    emissions += tracker.flush()
    return seen, emissions


def owner(frame_tracks: dict[str, BoundingBox], box: BoundingBox) -> str:
    return max(frame_tracks, key=lambda tid: frame_tracks[tid].iou(box))


def test_two_people_crossing_keep_their_tracks() -> None:
    frames = []
    for i in range(60):  # A walks right, B walks left, at nearly the same height
        frames.append([box_at(100 + 8 * i, 240), box_at(540 - 8 * i, 250)])
    tracker = Tracker(TrackerConfig(first_emit_seconds=0.5))
    seen, emissions = run(tracker, frames)
    a_first, b_first = owner(seen[0], frames[0][0]), owner(seen[0], frames[0][1])
    assert a_first != b_first
    assert owner(seen[-1], frames[-1][0]) == a_first  # A is still A after the crossing
    assert owner(seen[-1], frames[-1][1]) == b_first
    assert tracker.tracks_started == 2
    assert sorted(e.track_id for e in emissions) == sorted([a_first, b_first])


def test_short_occlusion_keeps_the_track() -> None:
    frames = [[box_at(200 + 3 * i, 240)] for i in range(40)]
    for i in range(15, 18):  # hidden behind a shelf for three detection rounds
        frames[i] = []
    tracker = Tracker(TrackerConfig(max_missed=4))
    _, emissions = run(tracker, frames)
    assert tracker.tracks_started == 1
    assert len(emissions) == 1


def test_leaving_and_coming_back_is_a_new_track() -> None:
    frames = (
        [[box_at(300, 240)] for _ in range(20)]
        + [[] for _ in range(30)]
        + [[box_at(310, 240)] for _ in range(20)]
    )
    tracker = Tracker(TrackerConfig(max_missed=4))
    _, emissions = run(tracker, frames)
    assert tracker.tracks_started == 2
    assert len({e.track_id for e in emissions}) == 2
    first, second = sorted(emissions, key=lambda e: e.candidate.captured_at)
    assert first.candidate.captured_at < T0 + timedelta(seconds=20 / FPS)
    assert second.candidate.captured_at >= T0 + timedelta(seconds=50 / FPS)


def test_a_minute_in_view_yields_a_handful_of_events() -> None:
    frames = [[box_at(320 + 10 * np.sin(i / 10), 240)] for i in range(int(60 * FPS))]
    tracker = Tracker(TrackerConfig(max_events=3, reemit_seconds=20, first_emit_seconds=1.0))
    _, emissions = run(tracker, frames)
    assert tracker.tracks_started == 1
    assert [e.reason for e in emissions] == ["first", "reemit", "reemit"]
    times = [e.candidate.captured_at for e in emissions]
    assert times[0] <= T0 + timedelta(seconds=1.1)


def test_flicker_and_tiny_faces_emit_nothing() -> None:
    frames = [[box_at(300, 240)]] + [[] for _ in range(10)] + [[box_at(100, 100, size=20)] for _ in range(10)]
    _, emissions = run(Tracker(TrackerConfig(min_face_px=40)), frames)
    assert emissions == []


def test_best_crop_prefers_the_larger_sharper_face() -> None:
    blurry = np.full((480, 640, 3), 128, np.uint8)
    tracker = Tracker(TrackerConfig(first_emit_seconds=10))
    for i, (frame, size) in enumerate([(blurry, 110), (FRAME, 140), (blurry, 120)]):
        index = tracker.step()
        tracker.update(
            [DetectedFace(box_at(300, 240, size), 0.9)], frame, T0 + timedelta(seconds=i), frame_index=index
        )
    (emission,) = tracker.flush()
    assert emission.candidate.bbox.width == 140
    assert emission.reason == "final"
    # the crop carries the margin around the face
    assert emission.candidate.crop.shape[0] > 140
