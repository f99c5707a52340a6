"""VectorIndex: exact search, add/remove, and persistence across restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ValidationError
from core.local.vectors import VectorIndex


def _vectors(n: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.12, size=(n, dim)).astype(np.float32)


def _brute(matrix: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(np.linalg.norm(matrix - q, axis=1), kind="stable")[:k])


def test_search_is_exact(tmp_path: Path) -> None:
    data = _vectors(2000)
    index = VectorIndex(tmp_path / "v")
    index.add_many([f"id{i}" for i in range(len(data))], data)
    assert len(index) == 2000
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = data[rng.integers(len(data))] + rng.normal(scale=0.03, size=128).astype(np.float32)
        hits = index.search(q, k=10)
        assert [h[0] for h in hits] == [f"id{i}" for i in _brute(data, q, 10)]
        expected = np.linalg.norm(data[int(hits[0][0][2:])] - q)
        assert hits[0][1] == pytest.approx(float(expected), abs=1e-4)
        assert [d for _, d in hits] == sorted(d for _, d in hits)


def test_max_distance_exclude_and_small_collections(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v", dim=2)
    assert index.search([0.0, 0.0], k=5) == []
    index.add("a", [0.0, 0.0])
    index.add("b", [0.3, 0.4])  # 0.5 away
    index.add("c", [3.0, 4.0])  # 5.0 away
    expected = [("a", 0.0), ("b", pytest.approx(0.5)), ("c", pytest.approx(5.0))]
    assert index.search([0.0, 0.0], k=10) == expected
    assert [h[0] for h in index.search([0.0, 0.0], k=10, max_distance=1.0)] == ["a", "b"]
    assert [h[0] for h in index.search([0.0, 0.0], k=1, exclude=["a"])] == ["b"]


def test_remove_and_replace(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v", dim=2)
    for i in range(5):
        index.add(f"id{i}", [float(i), 0.0], meta=f"m{i}")
    assert index.remove(["id1", "missing", "id1"]) == 1
    assert len(index) == 4 and "id1" not in index
    assert index.search([1.0, 0.0], k=1)[0][0] in {"id0", "id2"}
    index.add("id3", [10.0, 0.0], meta="moved")  # replace keeps one entry per id
    assert len(index) == 4 and index.meta("id3") == "moved"
    assert index.search([10.0, 0.0], k=1)[0] == ("id3", 0.0)
    # rows moved by swap-remove still map to the right ids
    assert sorted(index.ids()) == ["id0", "id2", "id3", "id4"]
    for item_id in index.ids():
        assert index.search(index.vector(item_id), k=1)[0] == (item_id, 0.0)


def test_rejects_wrong_dimensions_and_nan(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v", dim=4)
    with pytest.raises(ValidationError):
        index.add("x", [1.0, 2.0])
    with pytest.raises(ValidationError):
        index.add("x", [1.0, float("nan"), 0.0, 0.0])
    with pytest.raises(ValidationError):
        index.search([1.0], k=1)


def test_persists_across_restart_with_journal_and_compaction(tmp_path: Path) -> None:
    data = _vectors(3000, dim=16)
    first = VectorIndex(tmp_path / "v", dim=16)
    for i in range(1500):  # > 1000 journal records: forces a compaction on the way
        first.add(f"id{i}", data[i], meta=f"m{i}")
    first.add_many([f"id{i}" for i in range(1500, 3000)], data[1500:])
    first.remove([f"id{i}" for i in range(0, 3000, 3)])
    expected = sorted(first.ids())
    first.close()

    second = VectorIndex(tmp_path / "v", dim=16)
    assert sorted(second.ids()) == expected
    assert second.meta("id1") == "m1"
    np.testing.assert_array_equal(second.vector("id2999"), data[2999])
    assert second.search(data[4], k=1)[0] == ("id4", 0.0)
    # only the current generation is left on disk
    gens = {
        p.name.split(".")[1]
        for p in (tmp_path / "v").iterdir()
        if p.name[0] != "." and "." in p.name and p.name != "manifest.json"
    }
    assert len(gens) == 1


def test_torn_journal_tail_is_ignored(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v", dim=8)
    index.add("a", np.ones(8))
    index.add("b", np.zeros(8))
    index.close()
    journal = next((tmp_path / "v").glob("journal.*.log"))
    journal.write_bytes(journal.read_bytes()[:-10])  # crash in the middle of writing "b"
    reopened = VectorIndex(tmp_path / "v", dim=8)
    assert reopened.ids() == ["a"]
    reopened.add("c", np.full(8, 2.0))
    reopened.close()
    assert sorted(VectorIndex(tmp_path / "v", dim=8).ids()) == ["a", "c"]


def test_dimension_mismatch_on_reload(tmp_path: Path) -> None:
    VectorIndex(tmp_path / "v", dim=8).close()
    with pytest.raises(ValidationError):
        VectorIndex(tmp_path / "v", dim=16)


def test_faiss_ivf_fast_path_agrees_with_exact(tmp_path: Path) -> None:
    data = _vectors(20_000, seed=3)
    index = VectorIndex(None, use_faiss=True, ann_min_size=10_000)
    index.add_many([f"id{i}" for i in range(len(data))], data)
    rng = np.random.default_rng(9)
    picks = rng.integers(len(data), size=50)
    queries = data[picks] + rng.normal(scale=0.03, size=(50, 128)).astype(np.float32)
    assert index.prepare_fast_path(timeout=120)
    index.remove(["id0"])  # updates reach the IVF too
    index.add("late", data[picks[0]])
    hits = [index.search(q, k=1)[0][0] for q in queries]
    exact = [index.search(q, k=1, exact=True)[0][0] for q in queries]
    agree = np.mean([a == b for a, b in zip(hits, exact, strict=True)])
    assert agree >= 0.95
    assert index.search(data[0], k=1, exact=False)[0][0] != "id0"


def test_faiss_rebuild_keeps_new_vectors_searchable() -> None:
    data = _vectors(12_000, seed=4)
    index = VectorIndex(None, use_faiss=True, ann_min_size=2_000)
    index.add_many([f"id{i}" for i in range(2_000)], data[:2_000])
    assert index.prepare_fast_path(timeout=120)
    index.add_many([f"id{i}" for i in range(2_000, 11_000)], data[2_000:11_000])  # > 4x: retrain
    index.prepare_fast_path(wait=False)
    index.add("new", data[11_000])  # added while the rebuild runs
    assert index.search(data[11_000], k=1)[0] == ("new", 0.0)
    assert index.prepare_fast_path(timeout=120)
    assert index._ann.trained_size >= 11_000
    assert index.search(data[11_000], k=1)[0] == ("new", 0.0)
    index.remove(["new"])
    assert index.search(data[11_000], k=1)[0][0] != "new"
