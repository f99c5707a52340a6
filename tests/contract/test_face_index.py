"""Behavioural contract of the FaceIndex port, run against every backend.

Only the ``face_index_backend`` fixture knows which backend it builds; the tests
speak the port's language (collections, external ids, 0..1 similarities) and
use real photos. To add a backend (e.g. Rekognition behind a Stubber), add a
parameter and a ``_make_<name>`` builder; keep backend-specific setup there.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.errors import ConflictError, FaceNotFoundError, ImageDecodeError, NotFoundError
from core.models import FaceCrop, IndexedFace
from core.ports import FaceIndex
from core.settings import Settings
from tests.support.events import make_crop
from tests.support.photos import photo_bytes

MATCH = Settings().match_threshold  # the policy's own threshold (0.55)


@dataclass
class Backend:
    """Builds FaceIndex instances that share one store (``make()`` twice = a restart)."""

    name: str
    make: Callable[[], FaceIndex]
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _make_local(tmp_path: Path) -> Backend:
    from core.local.engine import get_engine
    from core.local.faces import LocalFaceIndex

    engine = get_engine()  # one loaded model for the whole session
    made: list[LocalFaceIndex] = []

    def make() -> FaceIndex:
        index = LocalFaceIndex(tmp_path / "data", engine=engine)
        made.append(index)
        return index

    return Backend("local", make, [lambda: [i.close() for i in made]])


def _make_rekognition(tmp_path: Path) -> Backend:
    from tests.contract.rekognition_fake import rekognition_index_factory

    return Backend("rekognition", rekognition_index_factory())


@pytest.fixture(params=["local", "rekognition"])
def face_index_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    builders = {"local": _make_local, "rekognition": _make_rekognition}
    backend = builders[request.param](tmp_path)
    yield backend
    for cleanup in backend.cleanup:
        cleanup()


@pytest.fixture
def face_index(face_index_backend: Backend) -> FaceIndex:
    return face_index_backend.make()


@pytest.fixture
def collection(face_index: FaceIndex) -> Iterator[str]:
    collection_id = f"storelens-test-{uuid.uuid4().hex[:12]}"  # unique: real services are shared
    face_index.create_collection(collection_id)
    yield collection_id
    with contextlib.suppress(NotFoundError):
        face_index.delete_collection(collection_id)


def test_create_list_delete_collection(face_index: FaceIndex) -> None:
    name = f"storelens-test-{uuid.uuid4().hex[:12]}"
    face_index.create_collection(name)
    assert name in face_index.list_collections()
    with pytest.raises(ConflictError):
        face_index.create_collection(name)
    face_index.delete_collection(name)
    assert name not in face_index.list_collections()
    with pytest.raises(NotFoundError):
        face_index.delete_collection(name)


def test_missing_collection_is_not_found(face_index: FaceIndex) -> None:
    missing = f"storelens-missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(NotFoundError):
        face_index.index_face(missing, photo_bytes("obama"), "cus_x")
    with pytest.raises(NotFoundError):
        face_index.search_by_image(missing, photo_bytes("obama"), MATCH, 5)
    with pytest.raises(NotFoundError):
        face_index.list_faces(missing)


def test_detect_faces(face_index: FaceIndex) -> None:
    faces = face_index.detect_faces(photo_bytes("t1"))
    assert len(faces) == 6
    assert [f.bbox.area for f in faces] == sorted((f.bbox.area for f in faces), reverse=True)
    assert all(0.0 <= f.confidence <= 1.0 for f in faces)
    with pytest.raises(ImageDecodeError):
        face_index.detect_faces(b"definitely not a jpeg")


def test_index_and_search_finds_same_person_not_another(face_index: FaceIndex, collection: str) -> None:
    obama = face_index.index_face(collection, photo_bytes("obama"), "cus_obama")
    biden = face_index.index_face(collection, photo_bytes("biden"), "cus_biden")
    assert isinstance(obama, IndexedFace) and obama.external_id == "cus_obama"
    assert obama.face_id != biden.face_id
    assert obama.bbox is not None and obama.bbox.width > 100

    for probe in ("obama2", "obama3"):
        hits = face_index.search_by_image(collection, photo_bytes(probe), MATCH, 5)
        print(probe, hits)
        assert hits, f"{probe} should match the indexed obama"
        assert hits[0].face_id == obama.face_id and hits[0].external_id == "cus_obama"
        assert MATCH <= hits[0].similarity <= 1.0
        assert all(h.external_id != "cus_biden" for h in hits)

    strangers = face_index.search_by_image(collection, photo_bytes("grace_hopper"), MATCH, 5)
    assert strangers == []
    # with no threshold every face comes back, best first, on the 0..1 scale
    everyone = face_index.search_by_image(collection, photo_bytes("obama2"), 0.0, 10)
    assert [h.external_id for h in everyone] == ["cus_obama", "cus_biden"]
    assert everyone[0].similarity > everyone[1].similarity >= 0.0
    assert len(face_index.search_by_image(collection, photo_bytes("obama2"), 0.0, 1)) == 1


def test_search_by_face_excludes_itself(face_index: FaceIndex, collection: str) -> None:
    first = face_index.index_face(collection, photo_bytes("obama"), "pid_one")
    second = face_index.index_face(collection, photo_bytes("obama3"), "pid_one")
    face_index.index_face(collection, photo_bytes("biden"), "pid_two")
    hits = face_index.search_by_face(collection, first.face_id, MATCH, 10)
    assert [h.face_id for h in hits] == [second.face_id]
    assert hits[0].external_id == "pid_one"


def test_delete_faces_removes_them_from_search(face_index: FaceIndex, collection: str) -> None:
    obama = face_index.index_face(collection, photo_bytes("obama"), "cus_obama")
    biden = face_index.index_face(collection, photo_bytes("biden"), "cus_biden")
    face_index.delete_faces(collection, [obama.face_id, str(uuid.uuid4())])  # unknown ids are ignored
    assert face_index.search_by_image(collection, photo_bytes("obama2"), MATCH, 5) == []
    assert [f.face_id for f in face_index.list_faces(collection)] == [biden.face_id]
    face_index.delete_faces(collection, [])


def test_list_faces(face_index: FaceIndex, collection: str) -> None:
    assert face_index.list_faces(collection) == []
    a = face_index.index_face(collection, photo_bytes("obama"), "cus_a")
    b = face_index.index_face(collection, photo_bytes("grace_hopper"), "cus_b")
    listed = {f.face_id: f.external_id for f in face_index.list_faces(collection)}
    assert listed == {a.face_id: "cus_a", b.face_id: "cus_b"}


def test_restart_keeps_faces(face_index_backend: Backend) -> None:
    before = face_index_backend.make()
    name = f"storelens-test-{uuid.uuid4().hex[:12]}"
    before.create_collection(name)
    indexed = before.index_face(name, photo_bytes("obama"), "cus_obama")
    gone = before.index_face(name, photo_bytes("biden"), "cus_biden")
    before.delete_faces(name, [gone.face_id])

    after = face_index_backend.make()  # a new process on the same store
    assert name in after.list_collections()
    assert [f.face_id for f in after.list_faces(name)] == [indexed.face_id]
    hits = after.search_by_image(name, photo_bytes("obama2"), MATCH, 5)
    assert [h.face_id for h in hits] == [indexed.face_id]
    after.delete_collection(name)


def test_no_face_raises_face_not_found(face_index: FaceIndex, collection: str) -> None:
    import io

    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 120, 150)).save(blank, format="JPEG")
    with pytest.raises(FaceNotFoundError):
        face_index.index_face(collection, blank.getvalue(), "cus_nobody")
    with pytest.raises(FaceNotFoundError):
        face_index.search_by_image(collection, blank.getvalue(), MATCH, 5)
    with pytest.raises(ImageDecodeError):
        face_index.index_face(collection, photo_bytes("obama")[:5000], "cus_cut")
    assert face_index.list_faces(collection) == []


# ----------------------------------------------------- crops of one track (v2)


def _blank_crop() -> FaceCrop:
    """A crop with no face in it and no face box (so no backend trusts a box)."""
    import io
    from datetime import UTC, datetime

    from PIL import Image

    from core.models import BoundingBox

    out = io.BytesIO()
    Image.new("RGB", (160, 160), (90, 120, 150)).save(out, format="JPEG")
    return FaceCrop(out.getvalue(), BoundingBox(0, 0, 160, 160), None, datetime.now(UTC), 0.9, 0.5)


def _crop(name: str) -> FaceCrop:
    return make_crop(photo_bytes(name))[0]


def test_search_crops_gives_one_hit_list_per_crop(face_index: FaceIndex, collection: str) -> None:
    obama = face_index.index_face(collection, photo_bytes("obama"), "cus_obama")
    face_index.index_face(collection, photo_bytes("biden"), "cus_biden")

    crops = [_crop("obama2"), _blank_crop(), _crop("obama3"), _crop("grace_hopper")]
    hits = face_index.search_crops(collection, crops, MATCH, 5)
    assert len(hits) == 4  # one list per crop, in order
    for i in (0, 2):
        assert hits[i] and hits[i][0].face_id == obama.face_id and hits[i][0].external_id == "cus_obama"
        assert MATCH <= hits[i][0].similarity <= 1.0
    assert hits[1] == []  # no usable face: no hits, not an error
    assert hits[3] == []  # a stranger
    # The same crop searched alone scores as it does in a batch (same 0..1 scale).
    (alone,) = face_index.search_crops(collection, [crops[0]], 0.0, 5)
    assert [h.external_id for h in alone] == ["cus_obama", "cus_biden"]
    assert alone[0].similarity == pytest.approx(hits[0][0].similarity, abs=1e-6)


def test_search_crops_fails_only_when_every_crop_fails(face_index: FaceIndex, collection: str) -> None:
    face_index.index_face(collection, photo_bytes("obama"), "cus_obama")
    with pytest.raises(FaceNotFoundError):
        face_index.search_crops(collection, [_blank_crop(), _blank_crop()], MATCH, 5)
    with pytest.raises(NotFoundError):
        face_index.search_crops(f"storelens-missing-{uuid.uuid4().hex[:12]}", [_crop("obama2")], MATCH, 5)


def test_index_crops_indexes_every_usable_crop_under_one_owner(
    face_index: FaceIndex, collection: str
) -> None:
    indexed = face_index.index_crops(
        collection, [_crop("obama"), _blank_crop(), _crop("obama3")], "pid_track"
    )
    assert len(indexed) == 3 and indexed[1] is None
    first, third = indexed[0], indexed[2]
    assert first is not None and third is not None and first.face_id != third.face_id
    assert first.external_id == third.external_id == "pid_track"
    listed = {f.face_id: f.external_id for f in face_index.list_faces(collection)}
    assert listed == {first.face_id: "pid_track", third.face_id: "pid_track"}
    hits = face_index.search_by_image(collection, photo_bytes("obama2"), MATCH, 5)
    assert {h.face_id for h in hits} == {first.face_id, third.face_id}
    with pytest.raises(FaceNotFoundError):
        face_index.index_crops(collection, [_blank_crop()], "pid_none")
    assert len(face_index.list_faces(collection)) == 2
