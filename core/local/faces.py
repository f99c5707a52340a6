"""``LocalFaceIndex``: the embedded backend's face collections (dlib + a vector index).

It implements :class:`core.ports.FaceIndex` with Rekognition-like behaviour so
the two backends are interchangeable (the contract tests in
``tests/contract/test_face_index.py`` hold both to it):

* collections are directories ``<data_dir>/faces/<collection_id>/`` each
  holding a :class:`~core.local.vectors.VectorIndex`; creating an existing one
  raises ``ConflictError``, touching a missing one ``NotFoundError``;
* face ids are uuid4 strings, ``external_id`` is stored with the vector;
* similarities are ``1 - euclidean distance`` clipped to 0..1 (the common scale
  of :mod:`core.models`), so a threshold of 0.55 means "distance <= 0.45".

The ingest path calls :meth:`search_by_image` and then, for a new person,
:meth:`index_face` on the same crop; a small LRU of embeddings keyed by the
SHA-256 of the image bytes makes that one detect + embed, not two.

>>> faces = LocalFaceIndex(Path("data"))                          # doctest: +SKIP
>>> faces.create_collection("storelens-faces")                    # doctest: +SKIP
>>> faces.index_face("storelens-faces", jpeg, "cus_3f2a")         # doctest: +SKIP
IndexedFace(face_id='9b1d...', external_id='cus_3f2a', ...)
>>> faces.search_by_image("storelens-faces", other_jpeg, 0.55, 5)  # doctest: +SKIP
[FaceMatch(face_id='9b1d...', external_id='cus_3f2a', similarity=0.66)]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import (
    ConflictError,
    FaceNotFoundError,
    ImageDecodeError,
    NotFoundError,
    StoreLensError,
    ValidationError,
)
from core.local.engine import (
    EMBEDDING_DIM,
    DlibFaceEngine,
    distance_to_similarity,
    get_engine,
    predictor_box_from_yunet,
    similarity_to_distance,
)
from core.local.vectors import VectorIndex
from core.models import BoundingBox, DetectedFace, FaceCrop, FaceMatch, IndexedFace

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["LocalFaceIndex"]

# Same character sets and lengths Rekognition accepts, so an id that works
# locally also works on AWS.
_COLLECTION_RE = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
_EXTERNAL_ID_RE = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
#: Rekognition's MaxFaces upper bound.
MAX_RESULTS_LIMIT = 4096


class LocalFaceIndex:
    """Face collections on local disk, searched with the dlib engine.

    Thread-safe (Streamlit serves each session from its own thread): the
    collection table has a lock, each :class:`VectorIndex` has its own, and the
    engine serialises model calls. Two instances on the same ``data_dir`` in one
    process see each other's collections only after a restart -- share one.
    """

    def __init__(
        self, data_dir: Path | str, engine: DlibFaceEngine | None = None, *, cache_size: int = 64
    ) -> None:
        self.root = Path(data_dir) / "faces"
        self.root.mkdir(parents=True, exist_ok=True)
        self._engine = engine
        self._lock = threading.RLock()
        self._open: dict[str, VectorIndex] = {}
        self._cache: OrderedDict[str, tuple[NDArray[np.float32], DetectedFace]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @property
    def engine(self) -> DlibFaceEngine:
        """The face engine (the process-wide one unless one was injected)."""
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    # ------------------------------------------------------------- collections
    def create_collection(self, collection_id: str) -> None:
        """Create an empty collection; ``ConflictError`` if it already exists."""
        path = self._path(collection_id)
        with self._lock:
            try:
                path.mkdir()
            except FileExistsError:
                raise ConflictError(f"face collection {collection_id!r} already exists") from None
            self._open[collection_id] = VectorIndex(path, dim=EMBEDDING_DIM)

    def delete_collection(self, collection_id: str) -> None:
        """Delete a collection and all its faces; ``NotFoundError`` if missing."""
        path = self._path(collection_id)
        with self._lock:
            if not path.is_dir():
                raise NotFoundError(f"face collection {collection_id!r} does not exist")
            index = self._open.pop(collection_id, None)
            if index is not None:
                index.close()
            # Rename first so the collection disappears atomically even if the
            # recursive delete is interrupted half-way.
            trash = self.root / f".deleted-{collection_id}-{uuid.uuid4().hex}"
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def list_collections(self) -> list[str]:
        """Collection ids, sorted."""
        with self._lock:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def close(self) -> None:
        """Close open journals (the object can still be used; files reopen)."""
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()

    # ------------------------------------------------------------------- faces
    def detect_faces(self, image: bytes) -> list[DetectedFace]:
        """Faces in ``image``, largest first; ``ImageDecodeError`` on bad bytes."""
        engine = self.engine
        return engine.detect(engine.decode(image))

    def embed_image(self, image: bytes) -> NDArray[np.float32]:
        """The 128-D template of the largest face in ``image`` (cached by content).

        Raises ``ImageDecodeError`` or ``FaceNotFoundError``. The returned array
        is read-only because it is shared through the cache.
        """
        return self._embed_cached(image)[0]

    def index_face(self, collection_id: str, image: bytes, external_id: str) -> IndexedFace:
        """Index the largest face of ``image`` under ``external_id``; ``FaceNotFoundError`` if none."""
        if not isinstance(external_id, str) or not _EXTERNAL_ID_RE.match(external_id):
            raise ValidationError(
                f"external_id {external_id!r} must be 1-255 characters of letters, digits, _ . - :"
            )
        index = self._index(collection_id)
        vector, face = self._embed_cached(image)
        face_id = str(uuid.uuid4())
        meta = {"external_id": external_id, "bbox": face.bbox.to_dict(), "confidence": face.confidence}
        index.add(face_id, vector, json.dumps(meta, separators=(",", ":")))
        return IndexedFace(
            face_id=face_id, external_id=external_id, bbox=face.bbox, confidence=face.confidence
        )

    def search_by_image(
        self, collection_id: str, image: bytes, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Indexed faces similar to the largest face in ``image``, best first."""
        index = self._index(collection_id)  # NotFoundError before any model work
        vector, _ = self._embed_cached(image)
        return self._search(index, vector, threshold, max_results, ())

    def search_by_face(
        self, collection_id: str, face_id: str, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Indexed faces similar to indexed face ``face_id`` (itself excluded), best first.

        ``NotFoundError`` if ``face_id`` is not in the collection.
        """
        index = self._index(collection_id)
        try:
            vector = index.vector(face_id)
        except KeyError:
            raise NotFoundError(f"face {face_id!r} is not in collection {collection_id!r}") from None
        return self._search(index, vector, threshold, max_results, (face_id,))

    def search_by_vector(
        self,
        collection_id: str,
        vector: NDArray[Any] | Sequence[float],
        threshold: float,
        max_results: int,
        *,
        exclude: Sequence[str] = (),
    ) -> list[FaceMatch]:
        """Indexed faces similar to a template from :meth:`embed_image`, best first."""
        return self._search(self._index(collection_id), vector, threshold, max_results, exclude)

    def add_vectors(
        self, collection_id: str, vectors: NDArray[Any], external_ids: Sequence[str]
    ) -> list[str]:
        """Bulk-import precomputed templates (migrations, benchmarks); returns new face ids.

        No detection happens, so no box is stored.
        """
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(external_ids), EMBEDDING_DIM)
        for external_id in set(external_ids):
            if not isinstance(external_id, str) or not _EXTERNAL_ID_RE.match(external_id):
                raise ValidationError(f"external_id {external_id!r} is not a valid opaque id")
        index = self._index(collection_id)
        face_ids = [str(uuid.uuid4()) for _ in external_ids]
        metas = [json.dumps({"external_id": e}, separators=(",", ":")) for e in external_ids]
        index.add_many(face_ids, matrix, metas)
        return face_ids

    # ---------------------------------------------------- crops of one track
    def embed_crops(
        self, crops: Sequence[FaceCrop], *, detector: str | None = None
    ) -> list[NDArray[np.float32] | None]:
        """One template per crop (``None`` for a crop without a usable face).

        A crop with a ``face`` box is aligned and embedded at that box directly:
        re-detecting the small faces of real footage (40-60 px) with HOG fails
        far more often than the edge's detector did. A YuNet box (``detector``
        ``yunet``) is first mapped onto the box dlib's 5-point predictor expects
        (:func:`~core.local.engine.predictor_box_from_yunet`). All boxed crops go
        through the ResNet in one batch (``embed_many``). A crop without a box
        (a v1 event) falls back to its largest detected face. Raises the first
        crop's error when no crop is usable.
        """
        vectors: list[NDArray[np.float32] | None] = [None] * len(crops)
        errors: list[StoreLensError] = []
        todo: list[tuple[int, str, NDArray[np.uint8], BoundingBox]] = []
        engine = self.engine
        for i, crop in enumerate(crops):
            try:
                if crop.face is None:
                    vectors[i] = self.embed_image(crop.jpeg)
                    continue
                box = _predictor_box(crop.face, detector)
                key = f"{hashlib.sha256(crop.jpeg).hexdigest()}@{box.left},{box.top},{box.width},{box.height}"
                cached = self._cached(key)
                if cached is not None:
                    vectors[i] = cached
                    continue
                todo.append((i, key, engine.decode(crop.jpeg), box))
            except (FaceNotFoundError, ImageDecodeError, ValidationError) as exc:
                errors.append(exc)
        if todo:
            try:
                batch = list(engine.embed_many([(rgb, box) for _i, _k, rgb, box in todo]))
            except (FaceNotFoundError, ValidationError):
                batch = []  # one bad box fails the batch: embed one by one to find it
                for _i, _k, rgb, box in todo:
                    try:
                        batch.append(engine.embed(rgb, box))
                    except (FaceNotFoundError, ValidationError) as exc:
                        errors.append(exc)
                        batch.append(None)
            for (i, key, _rgb, box), vector in zip(todo, batch, strict=True):
                if vector is not None:
                    vectors[i] = self._remember(key, vector, DetectedFace(bbox=box, confidence=0.0))
        if errors and all(v is None for v in vectors):
            raise errors[0]
        return vectors

    def search_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        threshold: float,
        max_results: int,
        *,
        detector: str | None = None,
    ) -> list[list[FaceMatch]]:
        """One hit list per crop, best first; ``[]`` for a crop without a usable face."""
        self.count(collection_id)  # NotFoundError before any model work
        return [
            [] if vector is None else self.search_by_vector(collection_id, vector, threshold, max_results)
            for vector in self.embed_crops(crops, detector=detector)
        ]

    def index_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        external_id: str,
        *,
        detector: str | None = None,
    ) -> list[IndexedFace | None]:
        """Index several crops of one owner; ``None`` for a crop without a usable face."""
        self.count(collection_id)
        vectors = self.embed_crops(crops, detector=detector)
        usable: list[int] = []
        rows: list[NDArray[np.float32]] = []
        for i, vector in enumerate(vectors):
            if vector is not None:
                usable.append(i)
                rows.append(vector)
        matrix = np.stack(rows) if rows else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        face_ids = self.add_vectors(collection_id, matrix, [external_id] * len(usable))
        out: list[IndexedFace | None] = [None] * len(crops)
        for i, face_id in zip(usable, face_ids, strict=True):
            out[i] = IndexedFace(
                face_id=face_id, external_id=external_id, bbox=crops[i].face, confidence=crops[i].confidence
            )
        return out

    def _cached(self, key: str) -> NDArray[np.float32] | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            self._cache.move_to_end(key)
            return hit[0]

    def _remember(self, key: str, vector: NDArray[np.float32], face: DetectedFace) -> NDArray[np.float32]:
        vector = np.asarray(vector, dtype=np.float32)
        vector.setflags(write=False)
        with self._cache_lock:
            self._cache[key] = (vector, face)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector

    def list_faces(self, collection_id: str) -> list[IndexedFace]:
        """Every face in the collection."""
        index = self._index(collection_id)
        faces = []
        for face_id, meta in index.items():
            info = json.loads(meta) if meta else {}
            bbox = info.get("bbox")
            faces.append(
                IndexedFace(
                    face_id=face_id,
                    external_id=info.get("external_id", ""),
                    bbox=BoundingBox.from_dict(bbox) if bbox else None,
                    confidence=float(info.get("confidence", 1.0)),
                )
            )
        return faces

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> None:
        """Remove faces; unknown ids are ignored."""
        if isinstance(face_ids, str):  # a lone id would otherwise be split into characters
            face_ids = [face_ids]
        self._index(collection_id).remove(face_ids)

    def count(self, collection_id: str) -> int:
        """How many faces the collection holds."""
        return len(self._index(collection_id))

    # --------------------------------------------------------------- internals
    def _search(
        self,
        index: VectorIndex,
        vector: NDArray[Any] | Sequence[float],
        threshold: float,
        max_results: int,
        exclude: Sequence[str],
    ) -> list[FaceMatch]:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValidationError(f"threshold {threshold} is outside the 0..1 similarity scale")
        if not 1 <= int(max_results) <= MAX_RESULTS_LIMIT:
            raise ValidationError(f"max_results must be 1..{MAX_RESULTS_LIMIT}, got {max_results}")
        # A small epsilon so "similarity >= threshold" is not lost to float rounding.
        hits = index.search(
            vector, int(max_results), max_distance=similarity_to_distance(threshold) + 1e-6, exclude=exclude
        )
        matches = []
        for face_id, dist in hits:
            similarity = distance_to_similarity(dist)
            if similarity + 1e-6 < threshold:
                continue
            try:
                info = json.loads(index.meta(face_id) or "{}")
            except KeyError:  # deleted by another thread since the search
                continue
            matches.append(
                FaceMatch(
                    face_id=face_id, external_id=info.get("external_id", ""), similarity=round(similarity, 6)
                )
            )
        return matches

    def _embed_cached(self, image: bytes) -> tuple[NDArray[np.float32], DetectedFace]:
        key = hashlib.sha256(image).hexdigest()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        # Embed outside the lock: two threads may embed the same new image at
        # once (harmless), but one slow embed never blocks cache hits.
        vector, face = self.engine.embed_largest(image)
        vector.setflags(write=False)
        with self._cache_lock:
            self._cache[key] = (vector, face)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector, face

    def _path(self, collection_id: str) -> Path:
        if not isinstance(collection_id, str) or not _COLLECTION_RE.match(collection_id):
            raise ValidationError(
                f"collection id {collection_id!r} must be 1-255 characters of letters, digits, _ . -"
            )
        if collection_id in {".", ".."}:
            raise ValidationError(f"collection id {collection_id!r} is not allowed")
        return self.root / collection_id

    def _index(self, collection_id: str) -> VectorIndex:
        path = self._path(collection_id)
        with self._lock:
            index = self._open.get(collection_id)
            if index is not None and path.is_dir():
                return index
            if index is not None:  # deleted behind our back (another instance)
                with contextlib.suppress(Exception):
                    index.close()
                del self._open[collection_id]
            if not path.is_dir():
                raise NotFoundError(f"face collection {collection_id!r} does not exist")
            index = VectorIndex(path, dim=EMBEDDING_DIM)
            self._open[collection_id] = index
            return index


def _predictor_box(face: BoundingBox, detector: str | None) -> BoundingBox:
    """The box to align a crop's face at: YuNet boxes sit higher and narrower than HOG's."""
    if detector is not None and detector.lower().startswith("yunet"):
        return predictor_box_from_yunet(face)
    return face
