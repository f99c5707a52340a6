"""``LocalFaceIndex``: the embedded backend's face collections (dlib + a vector index).

It implements :class:`core.ports.FaceIndex` with Rekognition-like behaviour so
the two backends are interchangeable (the contract tests in
``tests/contract/test_face_index.py`` hold both to it):

* collections and their templates live in the data dir's SQLite database
  (tables ``face_collections``, ``face_vectors``, ``face_deletions``; see
  :mod:`core.local.sqlite`), the one source of truth; creating an existing
  collection raises ``ConflictError``, touching a missing one ``NotFoundError``;
* face ids are uuid4 strings, ``external_id`` is stored with the vector;
* similarities are ``1 - euclidean distance`` clipped to 0..1 (the common scale
  of :mod:`core.models`), so a threshold of 0.55 means "distance <= 0.45".

Several processes may share a data dir. Each keeps, per collection, an
in-memory :class:`~core.local.vectors.VectorIndex` that is only a cache: before
every read it checks ``PRAGMA data_version`` on a dedicated connection (it
changes when any other connection commits) and, if something changed, applies
rows with ``seq`` above the last one seen and ids from the deletion log
(incremental; a full reload only when the collection was recreated or the log
was pruned). A write made inside ``SqliteRepositories.atomic()`` on the same
thread joins that transaction, so a face row and its template commit together.

Data dirs from before this layout (``<data_dir>/faces/<collection>/`` with
``vectors.N.npy`` / ``journal.N.log``) are imported once at start and the old
files deleted.

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
import logging
import re
import shutil
import sqlite3
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
from core.local.sqlite import SqliteDatabase, database, to_db_time
from core.local.vectors import VectorIndex
from core.models import BoundingBox, DetectedFace, FaceCrop, FaceMatch, IndexedFace, utcnow

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["LocalFaceIndex"]

# Same character sets and lengths Rekognition accepts, so an id that works
# locally also works on AWS.
_COLLECTION_RE = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
_EXTERNAL_ID_RE = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
#: Rekognition's MaxFaces upper bound.
MAX_RESULTS_LIMIT = 4096
#: Deletion-log rows kept; caches further behind than this reload fully.
DELETION_LOG_KEEP = 20_000

log = logging.getLogger(__name__)


class _Cache:
    """One collection's in-memory index and how far it has caught up."""

    __slots__ = ("del_seq", "index", "rowid", "seq", "stamp")

    def __init__(self, rowid: int) -> None:
        self.rowid = rowid
        self.index = VectorIndex(None, dim=EMBEDDING_DIM)
        self.seq = 0  # highest face_vectors.seq applied
        self.del_seq = 0  # highest face_deletions.seq applied
        self.stamp: tuple[int, int, int] | None = None  # (data_version, writes, rollbacks) when fresh


class LocalFaceIndex:
    """Face collections stored in SQLite, searched in memory with the dlib engine.

    Thread-safe (Streamlit serves each session from its own thread) and
    process-safe: any number of instances and processes on one data dir see
    each other's writes before their next read.
    """

    def __init__(
        self,
        data_dir: Path | str,
        engine: DlibFaceEngine | None = None,
        *,
        cache_size: int = 64,
        db: SqliteDatabase | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._db = db if db is not None else database(self.data_dir / "storelens.db")
        self._engine = engine
        self._lock = threading.RLock()
        self._caches: dict[str, _Cache] = {}
        self._cache: OrderedDict[str, tuple[NDArray[np.float32], DetectedFace]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        # Its own connection, never used for writes: its data_version changes
        # whenever any other connection (this process's included) commits.
        self._watch = self._db.connect()
        self._watch_lock = threading.Lock()
        self._import_legacy(self.data_dir / "faces")

    @property
    def engine(self) -> DlibFaceEngine:
        """The face engine (the process-wide one unless one was injected)."""
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    # ------------------------------------------------------------- collections
    def create_collection(self, collection_id: str) -> None:
        """Create an empty collection; ``ConflictError`` if it already exists."""
        self._check_collection_id(collection_id)
        try:
            with self._db.atomic():
                self._db.connection().execute(
                    "INSERT INTO face_collections (collection_id, created_at) VALUES (?, ?)",
                    (collection_id, to_db_time(utcnow())),
                )
                self._db.writes += 1
        except sqlite3.IntegrityError:
            raise ConflictError(f"face collection {collection_id!r} already exists") from None

    def delete_collection(self, collection_id: str) -> None:
        """Delete a collection and all its faces; ``NotFoundError`` if missing."""
        self._check_collection_id(collection_id)
        with self._db.atomic():
            conn = self._db.connection()
            rowid = self._rowid(conn, collection_id)
            conn.execute("DELETE FROM face_vectors WHERE collection=?", (rowid,))
            conn.execute("DELETE FROM face_collections WHERE rowid=?", (rowid,))
            self._db.writes += 1
        with self._lock:
            self._caches.pop(collection_id, None)

    def list_collections(self) -> list[str]:
        """Collection ids, sorted."""
        rows = self._db.connection().execute("SELECT collection_id FROM face_collections ORDER BY 1")
        return [r[0] for r in rows]

    def close(self) -> None:
        """Drop the in-memory caches (the object stays usable; they reload)."""
        with self._lock:
            for cache in self._caches.values():
                cache.index.close()
            self._caches.clear()

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
        """Index the largest face of ``image`` under ``external_id``; ``FaceNotFoundError`` if none.

        Inside ``SqliteRepositories.atomic()`` the template commits (or rolls
        back) with the caller's rows.
        """
        _check_external_id(external_id)
        self._check_collection_id(collection_id)
        vector, face = self._embed_cached(image)
        face_id = str(uuid.uuid4())
        bbox = json.dumps(face.bbox.to_dict(), separators=(",", ":"))
        self._insert(collection_id, [(face_id, external_id, bbox, float(face.confidence))], vector[None])
        return IndexedFace(
            face_id=face_id, external_id=external_id, bbox=face.bbox, confidence=face.confidence
        )

    def search_by_image(
        self, collection_id: str, image: bytes, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Indexed faces similar to the largest face in ``image``, best first."""
        self._fresh(collection_id)  # NotFoundError before any model work
        vector, _ = self._embed_cached(image)
        return self._search(collection_id, vector, threshold, max_results, ())

    def search_by_face(
        self, collection_id: str, face_id: str, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Indexed faces similar to indexed face ``face_id`` (itself excluded), best first.

        ``NotFoundError`` if ``face_id`` is not in the collection.
        """
        index = self._fresh(collection_id)
        try:
            vector = index.vector(face_id)
        except KeyError:
            raise NotFoundError(f"face {face_id!r} is not in collection {collection_id!r}") from None
        return self._search(collection_id, vector, threshold, max_results, (face_id,))

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
        return self._search(collection_id, vector, threshold, max_results, exclude)

    def add_vectors(
        self, collection_id: str, vectors: NDArray[Any], external_ids: Sequence[str]
    ) -> list[str]:
        """Bulk-import precomputed templates (migrations, benchmarks); returns new face ids.

        No detection happens, so no box is stored.
        """
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(external_ids), EMBEDDING_DIM)
        for external_id in set(external_ids):
            _check_external_id(external_id)
        self._check_collection_id(collection_id)
        face_ids = [str(uuid.uuid4()) for _ in external_ids]
        self._insert(
            collection_id, [(f, e, None, 1.0) for f, e in zip(face_ids, external_ids, strict=True)], matrix
        )
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
        index = self._fresh(collection_id)
        faces = []
        for face_id, meta in index.items():
            external_id, _, rest = meta.partition("\t")
            bbox, _, confidence = rest.partition("\t")
            faces.append(
                IndexedFace(
                    face_id=face_id,
                    external_id=external_id,
                    bbox=BoundingBox.from_dict(json.loads(bbox)) if bbox else None,
                    confidence=float(confidence or 1.0),
                )
            )
        return faces

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> None:
        """Remove faces; unknown ids are ignored.

        The rows go from SQLite (zeroed on disk: ``secure_delete``) and the ids
        into the deletion log, so every process's cache drops them too.
        """
        if isinstance(face_ids, str):  # a lone id would otherwise be split into characters
            face_ids = [face_ids]
        ids = list(dict.fromkeys(face_ids))
        with self._db.atomic():
            conn = self._db.connection()
            rowid = self._rowid(conn, collection_id)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                gone = [
                    r[0]
                    for r in conn.execute(
                        f"DELETE FROM face_vectors WHERE collection=? AND face_id IN ({marks})"
                        " RETURNING face_id",
                        (rowid, *chunk),
                    )
                ]
                conn.executemany("INSERT INTO face_deletions (face_id) VALUES (?)", [(g,) for g in gone])
            self._db.writes += 1
            self._prune_deletions(conn)
            self._db.scrub_after_commit()

    def count(self, collection_id: str) -> int:
        """How many faces the collection holds."""
        return len(self._fresh(collection_id))

    def delete_by_external_id(self, collection_id: str, external_id: str) -> int:
        """Remove every face stored under ``external_id``; returns how many."""
        rowid = self._rowid(self._db.connection(), collection_id)
        ids = [
            r[0]
            for r in self._db.connection().execute(
                "SELECT face_id FROM face_vectors WHERE collection=? AND external_id=?", (rowid, external_id)
            )
        ]
        if ids:
            self.delete_faces(collection_id, ids)
        return len(ids)

    # --------------------------------------------------------------- internals
    def _insert(
        self,
        collection_id: str,
        rows: Sequence[tuple[str, str, str | None, float]],
        matrix: NDArray[np.float32],
    ) -> None:
        matrix = np.ascontiguousarray(matrix, dtype="<f4").reshape(len(rows), EMBEDDING_DIM)
        if not np.all(np.isfinite(matrix)):
            raise ValidationError("vectors contain NaN or infinite values")
        with self._db.atomic():
            conn = self._db.connection()
            rowid = self._rowid(conn, collection_id)
            conn.executemany(
                "INSERT INTO face_vectors (collection, face_id, external_id, bbox, confidence, vector)"
                " VALUES (?,?,?,?,?,?)",
                [(rowid, f, e, b, c, v.tobytes()) for (f, e, b, c), v in zip(rows, matrix, strict=True)],
            )
            self._db.writes += 1

    def _rowid(self, conn: sqlite3.Connection, collection_id: str) -> int:
        self._check_collection_id(collection_id)
        row = conn.execute(
            "SELECT rowid FROM face_collections WHERE collection_id=?", (collection_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"face collection {collection_id!r} does not exist")
        return int(row[0])

    def _data_version(self) -> int:
        with self._watch_lock:
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _fresh(self, collection_id: str) -> VectorIndex:
        """The collection's cache, caught up with the database (the cheap check first)."""
        self._check_collection_id(collection_id)
        with self._lock:
            stamp = (self._data_version(), self._db.writes, self._db.rollbacks)
            cache = self._caches.get(collection_id)
            if cache is not None and cache.stamp == stamp:
                return cache.index
            with self._db.snapshot() as conn:
                rowid = self._rowid(conn, collection_id)
                if cache is not None and cache.rowid == rowid and cache.stamp is not None:
                    reload = stamp[2] != cache.stamp[2]  # a rollback may have reused a seq
                    floor = conn.execute("SELECT min(seq) FROM face_deletions").fetchone()[0]
                    if floor is not None and floor > cache.del_seq + 1 and cache.del_seq:
                        reload = True  # the log was pruned past what we applied
                else:
                    reload = True
                if reload:
                    if cache is not None:
                        cache.index.close()
                    cache = self._caches[collection_id] = _Cache(rowid)
                    last_del = conn.execute("SELECT max(seq) FROM face_deletions").fetchone()[0]
                    cache.del_seq = int(last_del or 0)
                else:
                    assert cache is not None
                    deleted = [
                        r[1]
                        for r in conn.execute(
                            "SELECT seq, face_id FROM face_deletions WHERE seq>? ORDER BY seq",
                            (cache.del_seq,),
                        )
                    ]
                    if deleted:
                        cache.index.remove(deleted)
                    last_del = conn.execute("SELECT max(seq) FROM face_deletions").fetchone()[0]
                    cache.del_seq = max(cache.del_seq, int(last_del or 0))
                self._apply_adds(conn, cache)
            cache.stamp = stamp
            return cache.index

    def _apply_adds(self, conn: sqlite3.Connection, cache: _Cache) -> None:
        rows = conn.execute(
            "SELECT seq, face_id, external_id, bbox, confidence, vector FROM face_vectors"
            " WHERE collection=? AND seq>? ORDER BY seq",
            (cache.rowid, cache.seq),
        ).fetchall()
        if not rows:
            return
        matrix = np.frombuffer(b"".join(r[5] for r in rows), dtype="<f4").reshape(len(rows), EMBEDDING_DIM)
        # The cache's meta string: the external id, then box and confidence
        # when there are any (cheap to build for 100k rows, unlike JSON).
        metas = [f"{r[2]}\t{r[3]}\t{r[4]}" if r[3] else r[2] for r in rows]
        cache.index.add_many([r[1] for r in rows], matrix.astype(np.float32), metas)
        cache.seq = int(rows[-1][0])

    def _prune_deletions(self, conn: sqlite3.Connection) -> None:
        last = conn.execute("SELECT max(seq) FROM face_deletions").fetchone()[0]
        if last and last % 1000 == 0:
            conn.execute("DELETE FROM face_deletions WHERE seq <= ?", (last - DELETION_LOG_KEEP,))

    def _search(
        self,
        collection_id: str,
        vector: NDArray[Any] | Sequence[float],
        threshold: float,
        max_results: int,
        exclude: Sequence[str],
    ) -> list[FaceMatch]:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValidationError(f"threshold {threshold} is outside the 0..1 similarity scale")
        if not 1 <= int(max_results) <= MAX_RESULTS_LIMIT:
            raise ValidationError(f"max_results must be 1..{MAX_RESULTS_LIMIT}, got {max_results}")
        index = self._fresh(collection_id)
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
                external_id = index.meta(face_id).partition("\t")[0]
            except KeyError:  # deleted by another thread since the search
                continue
            matches.append(
                FaceMatch(face_id=face_id, external_id=external_id, similarity=round(similarity, 6))
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

    @staticmethod
    def _check_collection_id(collection_id: str) -> None:
        if not isinstance(collection_id, str) or not _COLLECTION_RE.match(collection_id):
            raise ValidationError(
                f"collection id {collection_id!r} must be 1-255 characters of letters, digits, _ . -"
            )
        if collection_id in {".", ".."}:
            raise ValidationError(f"collection id {collection_id!r} is not allowed")

    def _import_legacy(self, root: Path) -> None:
        """Import ``<data_dir>/faces/<collection>/`` vector files (the old layout) once, then delete them."""
        if not root.is_dir():
            return
        for path in sorted(root.iterdir()):
            if not path.is_dir():
                continue
            if path.name.startswith(".") or not (path / "manifest.json").exists():
                shutil.rmtree(path, ignore_errors=True)  # half-deleted collections of the old layout
                continue
            old = VectorIndex(path, dim=EMBEDDING_DIM, use_faiss=False)
            try:
                rows: list[tuple[str, str, str | None, float]] = []
                for face_id, meta in old.items():
                    info = json.loads(meta) if meta else {}
                    bbox = info.get("bbox")
                    rows.append(
                        (
                            face_id,
                            str(info.get("external_id", "")),
                            json.dumps(bbox, separators=(",", ":")) if bbox else None,
                            float(info.get("confidence", 1.0)),
                        )
                    )
                matrix = (
                    np.stack([old.vector(r[0]) for r in rows])
                    if rows
                    else np.empty((0, EMBEDDING_DIM), np.float32)
                )
            finally:
                old.close()
            with self._db.atomic():
                conn = self._db.connection()
                exists = conn.execute(
                    "SELECT 1 FROM face_collections WHERE collection_id=?", (path.name,)
                ).fetchone()
                if exists is None:
                    conn.execute(
                        "INSERT INTO face_collections (collection_id, created_at) VALUES (?, ?)",
                        (path.name, to_db_time(utcnow())),
                    )
                known = {
                    r[0]
                    for r in conn.execute(
                        "SELECT face_id FROM face_vectors WHERE face_id IN (SELECT value FROM json_each(?))",
                        (json.dumps([r[0] for r in rows]),),
                    )
                }
                keep = [i for i, r in enumerate(rows) if r[0] not in known]
                if keep:
                    self._insert(path.name, [rows[i] for i in keep], matrix[keep])
            log.warning("imported %d face templates of %r from %s into SQLite", len(rows), path.name, path)
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()


def _check_external_id(external_id: str) -> None:
    if not isinstance(external_id, str) or not _EXTERNAL_ID_RE.match(external_id):
        raise ValidationError(
            f"external_id {external_id!r} must be 1-255 characters of letters, digits, _ . - :"
        )


def _predictor_box(face: BoundingBox, detector: str | None) -> BoundingBox:
    """The box to align a crop's face at: YuNet boxes sit higher and narrower than HOG's."""
    if detector is not None and detector.lower().startswith("yunet"):
        return predictor_box_from_yunet(face)
    return face
