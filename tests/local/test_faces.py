"""LocalFaceIndex extras beyond the FaceIndex contract: cache, vectors, threads, validation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from core.errors import NotFoundError, ValidationError
from core.local.engine import DlibFaceEngine, get_engine
from core.local.faces import LocalFaceIndex
from core.models import DetectedFace
from tests.support.photos import photo_bytes


class CountingEngine(DlibFaceEngine):
    """The real engine (shared loaded models) that counts full embeddings."""

    def __init__(self, real: DlibFaceEngine) -> None:
        super().__init__()
        self._models = real._get_models()
        self.embeds = 0

    def embed_largest(self, image: bytes) -> tuple[np.ndarray, DetectedFace]:
        self.embeds += 1
        return super().embed_largest(image)


@pytest.fixture(scope="module")
def engine() -> DlibFaceEngine:
    e = get_engine()
    e.load()
    return e


def test_search_then_index_embeds_once(tmp_path: Path, engine: DlibFaceEngine) -> None:
    counting = CountingEngine(engine)
    faces = LocalFaceIndex(tmp_path, engine=counting)
    faces.create_collection("c")
    crop = photo_bytes("obama")
    assert faces.search_by_image("c", crop, 0.42, 10) == []
    faces.index_face("c", crop, "pid_1")  # the ingest path: search, then index the same crop
    assert counting.embeds == 1
    assert len(faces.search_by_image("c", crop, 0.42, 10)) == 1
    assert counting.embeds == 1
    faces.index_face("c", photo_bytes("biden"), "pid_2")
    assert counting.embeds == 2


def test_embed_image_and_search_by_vector(tmp_path: Path, engine: DlibFaceEngine) -> None:
    faces = LocalFaceIndex(tmp_path, engine=engine)
    faces.create_collection("c")
    obama = faces.index_face("c", photo_bytes("obama"), "cus_o")
    vector = faces.embed_image(photo_bytes("obama2"))
    assert vector.shape == (128,) and vector.dtype == np.float32
    assert not vector.flags.writeable  # shared through the cache
    hits = faces.search_by_vector("c", vector, 0.55, 5)
    assert [h.face_id for h in hits] == [obama.face_id]
    d = engine.distance(vector, faces.embed_image(photo_bytes("obama")))
    assert hits[0].similarity == pytest.approx(1.0 - d, abs=1e-5)
    assert faces.search_by_vector("c", vector, 0.55, 5, exclude=[obama.face_id]) == []


def test_add_vectors_bulk_import(tmp_path: Path) -> None:
    faces = LocalFaceIndex(tmp_path, engine=get_engine())
    faces.create_collection("c")
    data = np.random.default_rng(0).normal(scale=0.12, size=(500, 128)).astype(np.float32)
    ids = faces.add_vectors("c", data, [f"cus_{i}" for i in range(500)])
    assert len(set(ids)) == 500 and faces.count("c") == 500
    hits = faces.search_by_vector("c", data[7], 0.9, 1)
    assert hits[0].face_id == ids[7] and hits[0].external_id == "cus_7" and hits[0].similarity == 1.0
    restarted = LocalFaceIndex(tmp_path, engine=get_engine())
    assert restarted.count("c") == 500


def test_ids_are_validated_like_rekognition(tmp_path: Path) -> None:
    faces = LocalFaceIndex(tmp_path, engine=get_engine())
    for bad in ("", "../etc", "a b", "x" * 256, "名前"):
        with pytest.raises(ValidationError):
            faces.create_collection(bad)
    faces.create_collection("ok-1.collection_A")
    with pytest.raises(ValidationError):
        faces.index_face("ok-1.collection_A", photo_bytes("obama"), "Barack Obama")  # names never go in
    with pytest.raises(ValidationError):
        faces.search_by_vector("ok-1.collection_A", np.zeros(128), 1.5, 5)
    with pytest.raises(ValidationError):
        faces.search_by_vector("ok-1.collection_A", np.zeros(128), 0.5, 0)
    with pytest.raises(NotFoundError):
        faces.search_by_face("ok-1.collection_A", "no-such-face", 0.5, 5)


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    faces = LocalFaceIndex(tmp_path, engine=get_engine())
    faces.create_collection("c")
    rng = np.random.default_rng(1)
    data = rng.normal(scale=0.12, size=(8, 200, 128)).astype(np.float32)
    errors: list[BaseException] = []

    def writer(batch: int) -> None:
        try:
            for i, vector in enumerate(data[batch]):
                ids = faces.add_vectors("c", vector[None], [f"cus_{batch}_{i}"])
                assert faces.search_by_vector("c", vector, 0.99, 1)[0].face_id == ids[0]
                if i % 3 == 0:
                    faces.delete_faces("c", ids)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = 8 * sum(1 for i in range(200) if i % 3 != 0)
    assert faces.count("c") == expected
    faces.close()
    assert LocalFaceIndex(tmp_path, engine=get_engine()).count("c") == expected


def test_instances_on_one_data_dir_see_each_others_writes(tmp_path: Path) -> None:
    """Two indexes on one data dir (as two processes would): SQLite is the truth, caches catch up."""
    a = LocalFaceIndex(tmp_path, engine=get_engine())
    b = LocalFaceIndex(tmp_path, engine=get_engine())
    a.create_collection("c")
    data = np.random.default_rng(2).normal(scale=0.12, size=(50, 128)).astype(np.float32)
    ids = a.add_vectors("c", data[:40], [f"cus_{i}" for i in range(40)])
    assert b.count("c") == 40  # b loads everything
    more = b.add_vectors("c", data[40:], [f"cus_{i}" for i in range(40, 50)])
    a.delete_faces("c", ids[:5])
    assert a.count("c") == b.count("c") == 45
    assert b.search_by_vector("c", data[0], 0.9, 1) == []  # deleted by a, gone from b's cache
    assert a.search_by_vector("c", data[45], 0.9, 1)[0].face_id == more[5]
    b.delete_collection("c")
    with pytest.raises(NotFoundError):
        a.count("c")


def test_a_rolled_back_write_leaves_no_face(tmp_path: Path) -> None:
    from core.local.sqlite import SqliteRepositories

    repos = SqliteRepositories(tmp_path / "storelens.db")
    faces = LocalFaceIndex(tmp_path, engine=get_engine(), db=repos.db)
    faces.create_collection("c")
    vector = np.random.default_rng(3).normal(scale=0.12, size=(1, 128)).astype(np.float32)
    with pytest.raises(RuntimeError), repos.atomic():
        faces.add_vectors("c", vector, ["pid_x"])
        assert faces.count("c") == 1  # visible inside its own transaction
        raise RuntimeError("decision failed")
    assert faces.count("c") == 0
    assert faces.add_vectors("c", vector, ["pid_y"]) and faces.count("c") == 1


def test_old_vector_files_are_imported_once(tmp_path: Path) -> None:
    from core.local.vectors import VectorIndex

    old = VectorIndex(tmp_path / "faces" / "legacy", dim=128)
    data = np.random.default_rng(4).normal(scale=0.12, size=(3, 128)).astype(np.float32)
    old.add_many(["f1", "f2", "f3"], data, ['{"external_id":"cus_a"}'] * 3)
    old.close()
    faces = LocalFaceIndex(tmp_path, engine=get_engine())
    assert faces.count("legacy") == 3
    assert faces.search_by_vector("legacy", data[1], 0.9, 1)[0].face_id == "f2"
    assert not (tmp_path / "faces").exists()  # the old journal (and the vectors in it) is gone
    assert LocalFaceIndex(tmp_path, engine=get_engine()).count("legacy") == 3
