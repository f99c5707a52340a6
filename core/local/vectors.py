"""A persistent exact vector index for face templates (numpy), with an optional faiss fast path.

:class:`VectorIndex` keeps ``float32`` vectors in one growing matrix plus their
string ids, answers k-nearest-neighbour queries by exact (brute-force)
Euclidean search, and persists itself to a directory so a restarted process
sees every vector.

Why exact numpy, and where faiss comes in
-----------------------------------------
Measured on a 2-core x86-64 VM (one thread per search, 128-D float32,
synthetic templates shaped like dlib's: norm ~1.4, strangers ~0.85 apart,
queries = a stored vector + same-person noise of ~0.35; ``bench/recognition.py``
reproduces the numpy and IVF rows). Recall is against exact search; the VM was
shared, so medians under load ran up to ~1.5x these.

* 10k identities: numpy exact 0.4-0.8 ms.
* 100k: numpy exact 5.6 ms (7-11 ms under load); faiss IndexFlatL2 5.1 ms;
  faiss IVFFlat(nlist=1264) nprobe=64 0.6 ms, recall@1 0.990 (nprobe=32:
  0.985); faiss HNSW32 efSearch=128 1.1 ms but recall@1 only 0.875, build 36 s.
* 1M: numpy exact 52-61 ms; IndexFlatL2 52 ms; IVFFlat(nlist=4000) nprobe=64
  2.1 ms / recall@1 0.975, **nprobe=128 3.5 ms (4.6 ms under load) / recall@1
  0.990-1.000**, nprobe=256 6.7 ms / 0.995. IVF build (train + add): 128-159 s
  on 2 threads. recall@10 is low (0.4-0.6) for every approximate index because
  ranks 2-10 are interchangeable strangers at ~0.85; only rank 1 matters here.

* Exact numpy search is memory-bound (it reads every vector once): ~0.056 us
  per identity on one core, so ~5 ms around 100k identities -- the size a store
  chain realistically reaches -- and always exact. faiss' own flat index is no
  faster, so it is not used.
* HNSW is ruled out: template distances concentrate (everyone is a stranger at
  ~0.85), its graph routes poorly on such data (recall@1 0.875 at 100k even with
  efSearch=128) and building it for 1M takes many minutes on two cores.
* IVFFlat reaches the 1M target (<= 5 ms, recall@1 >= 0.99) and its distances are exact L2
  on the probed lists. So: below :data:`ANN_MIN_SIZE` vectors (or without
  ``faiss-cpu`` installed) the index is numpy-exact; above it, if faiss is
  importable, an IVFFlat is built in a background thread from the numpy matrix
  (which stays the source of truth) and serves searches once ready. Until then,
  searches stay exact. faiss is optional: ``pip install faiss-cpu==1.15.1``.
  The build uses faiss' OpenMP threads (all cores) for ~2 min at 1M; call
  :meth:`VectorIndex.prepare_fast_path` at startup to get it out of the way.

Persistence
-----------
:class:`core.local.faces.LocalFaceIndex` no longer persists through this
class: the face templates live in SQLite (the one source of truth several
processes share) and each process keeps a ``VectorIndex(None)`` -- in memory,
no files -- as a cache of them. The directory mode below remains for other
callers and for importing data dirs written by older versions.

``<dir>/manifest.json`` names the current snapshot generation ``g``;
``vectors.<g>.npy`` + ``entries.<g>.json`` hold the snapshot and
``journal.<g>.log`` the adds/removes since, as CRC-checked records appended
and flushed per call (writing a 100k x 128 matrix per new face would be
absurd). Snapshots are written to temp files and published with
``os.replace`` of the manifest, so a crash leaves either the old or the new
generation; a torn last journal record is ignored on reload. The journal is
folded into a new snapshot once it outgrows ``max(1000, 10 % of size)``.

>>> index = VectorIndex(tmp_dir, dim=4)                      # doctest: +SKIP
>>> index.add("face-1", np.array([0.1, 0.2, 0.3, 0.4]))      # doctest: +SKIP
>>> index.search(np.array([0.1, 0.2, 0.3, 0.5]), k=1)        # doctest: +SKIP
[('face-1', 0.1)]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import BackendError, ValidationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ANN_MIN_SIZE", "VectorIndex"]

log = logging.getLogger(__name__)

#: Below this many vectors exact numpy search is fast enough (<= ~5 ms).
ANN_MIN_SIZE = 120_000
#: IVF lists probed per query; chosen for recall@1 >= 0.99 at 1M (see table).
IVF_NPROBE = 128
#: Rebuild the IVF (retrain centroids) once the index has grown this much.
IVF_REBUILD_GROWTH = 4.0

_OP_ADD = b"A"
_OP_REMOVE = b"R"
_HEADER = struct.Struct("<cHI")  # op, id length, meta length
_CRC = struct.Struct("<I")


class VectorIndex:
    """Exact Euclidean k-NN over ``float32`` vectors keyed by string ids, persisted to a directory.

    Each id also carries an opaque ``meta`` string (the face index stores the
    external id and box there) so one journal keeps both consistent.
    Thread-safe: every public method holds one re-entrant lock.

    ``use_faiss``: ``None`` = use faiss IVF above :data:`ANN_MIN_SIZE` when it
    is importable; ``False`` = always exact; ``True`` = as ``None`` but the
    threshold is ``ann_min_size`` (tests/benchmarks).
    """

    def __init__(
        self,
        directory: Path | str | None,
        dim: int = 128,
        *,
        use_faiss: bool | None = None,
        ann_min_size: int = ANN_MIN_SIZE,
        fsync: bool = False,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.dim = dim
        self._fsync = fsync
        self._lock = threading.RLock()
        self._vectors: NDArray[np.float32] = np.empty((0, dim), dtype=np.float32)
        self._sqnorms: NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._ids: list[str] = []
        self._metas: list[str] = []
        self._seqs: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._row: dict[str, int] = {}
        # faiss ids are sequence numbers (stable, unlike rows, which move on
        # swap-remove); this maps them back for the IVF path.
        self._seq_id: dict[int, str] = {}
        self._size = 0
        self._next_seq = 0
        self._generation = 0
        self._journal: Any = None
        self._journal_ops = 0
        self._ann = _Ann(self, enabled=use_faiss is not False, min_size=ann_min_size)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._load()

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self._size

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def ids(self) -> list[str]:
        """All ids, in insertion order modulo removals."""
        with self._lock:
            return self._ids[: self._size]

    def items(self) -> Iterator[tuple[str, str]]:
        """``(id, meta)`` pairs (a snapshot; safe to iterate while others write)."""
        with self._lock:
            pairs = list(zip(self._ids[: self._size], self._metas[: self._size], strict=True))
        return iter(pairs)

    def meta(self, item_id: str) -> str:
        """The meta string stored with ``item_id``; ``KeyError`` if unknown."""
        with self._lock:
            return self._metas[self._row[item_id]]

    def vector(self, item_id: str) -> NDArray[np.float32]:
        """A copy of the vector stored under ``item_id``; ``KeyError`` if unknown."""
        with self._lock:
            copy: NDArray[np.float32] = self._vectors[self._row[item_id]].copy()
            return copy

    # ------------------------------------------------------------------ writes
    def add(self, item_id: str, vector: NDArray[Any] | Sequence[float], meta: str = "") -> None:
        """Add (or replace) one vector."""
        self.add_many([item_id], np.asarray(vector, dtype=np.float32).reshape(1, -1), [meta])

    def add_many(
        self, item_ids: Sequence[str], vectors: NDArray[Any], metas: Sequence[str] | None = None
    ) -> None:
        """Add (or replace) many vectors in one journal write."""
        matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(item_ids), -1))
        if matrix.shape[1] != self.dim:
            raise ValidationError(f"vectors must have {self.dim} dimensions, got {matrix.shape[1]}")
        if not np.all(np.isfinite(matrix)):
            raise ValidationError("vectors contain NaN or infinite values")
        metas = list(metas) if metas is not None else [""] * len(item_ids)
        if len(metas) != len(item_ids) or len(set(item_ids)) != len(item_ids):
            raise ValidationError("ids must be unique and match vectors and metas one to one")
        with self._lock:
            replaced = [i for i in item_ids if i in self._row]
            if replaced:
                self._remove_rows(replaced)
            self._append_rows(item_ids, matrix, metas)
            if self.directory is not None:  # in-memory caches have no journal to encode for
                self._log(
                    b"".join(_encode_add(i, v, m) for i, v, m in zip(item_ids, matrix, metas, strict=True)),
                    len(item_ids),
                )

    def remove(self, item_ids: Iterable[str]) -> int:
        """Remove ids (unknown ones are ignored); return how many were removed."""
        with self._lock:
            present = [i for i in dict.fromkeys(item_ids) if i in self._row]
            if not present:
                return 0
            self._remove_rows(present)
            self._log(b"".join(_encode_remove(i) for i in present), len(present))
            return len(present)

    def clear(self) -> None:
        """Remove everything (the directory is kept, with an empty snapshot)."""
        with self._lock:
            self._remove_rows(self.ids())
            self.compact()

    def prepare_fast_path(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Start building the faiss IVF now if the index is big enough (and faiss present).

        Searches build it on demand anyway; call this at startup so the first
        searches after a restart are not exact-only. Returns ``True`` once the
        IVF serves searches (with ``wait=False``: whether it already does).
        """
        with self._lock:
            ann = self._ann
            if not ann.enabled or self._size < ann.min_size:
                return False
            if ann.index is None or self._size > ann.trained_size * IVF_REBUILD_GROWTH:
                ann._start_build()
        return ann.wait(timeout) if wait else ann.index is not None

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: NDArray[Any] | Sequence[float],
        k: int = 1,
        *,
        max_distance: float | None = None,
        exclude: Iterable[str] = (),
        exact: bool | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest ids with Euclidean distances, nearest first.

        ``max_distance`` drops farther hits; ``exclude`` ids are never returned.
        ``exact=True`` forces brute force even when a faiss IVF is ready.
        """
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValidationError(f"query must have {self.dim} dimensions, got {q.shape[0]}")
        excluded = set(exclude)
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            want = min(n, k + len(excluded))
            hits = None if exact else self._ann.search(q, want)
            if hits is None:
                hits = self._exact(q, want)
        out: list[tuple[str, float]] = []
        for item_id, dist in hits:
            if item_id in excluded:
                continue
            if max_distance is not None and dist > max_distance:
                break
            out.append((item_id, dist))
            if len(out) == k:
                break
        return out

    def _exact(self, q: NDArray[np.float32], k: int) -> list[tuple[str, float]]:
        n = self._size
        # |x - q|^2 = |x|^2 - 2 x.q + |q|^2: one matrix-vector product over the
        # whole matrix, which is what makes brute force memory-bound and fast.
        d2 = self._sqnorms[:n] - 2.0 * (self._vectors[:n] @ q)
        d2 += float(q @ q)
        if k < n:
            top = np.argpartition(d2, k - 1)[:k]
            top = top[np.argsort(d2[top], kind="stable")]
        else:
            top = np.argsort(d2, kind="stable")
        # The expansion above loses ~1e-4 to cancellation; recompute the k
        # winners directly so reported distances are exact (and 0 for itself).
        dist = np.linalg.norm(self._vectors[top] - q, axis=1)
        return [(self._ids[int(r)], float(d)) for r, d in zip(top, dist, strict=True)]

    # --------------------------------------------------------------- internals
    def _append_rows(
        self, item_ids: Sequence[str], matrix: NDArray[np.float32], metas: Sequence[str]
    ) -> None:
        count = len(item_ids)
        need = self._size + count
        if need > self._vectors.shape[0]:
            capacity = max(need, 1024, int(self._vectors.shape[0] * 1.5))
            grown = np.empty((capacity, self.dim), dtype=np.float32)
            grown[: self._size] = self._vectors[: self._size]
            sq = np.empty(capacity, dtype=np.float32)
            sq[: self._size] = self._sqnorms[: self._size]
            seqs = np.empty(capacity, dtype=np.int64)
            seqs[: self._size] = self._seqs[: self._size]
            self._vectors, self._sqnorms, self._seqs = grown, sq, seqs
        start = self._size
        self._vectors[start:need] = matrix
        self._sqnorms[start:need] = np.einsum("ij,ij->i", matrix, matrix)
        new_seqs = np.arange(self._next_seq, self._next_seq + count, dtype=np.int64)
        self._seqs[start:need] = new_seqs
        self._next_seq += count
        del self._ids[start:]
        del self._metas[start:]
        self._ids.extend(item_ids)
        self._metas.extend(metas)
        for offset, item_id in enumerate(item_ids):
            self._row[item_id] = start + offset
            self._seq_id[int(new_seqs[offset])] = item_id
        self._size = need
        self._ann.added(matrix, new_seqs)

    def _remove_rows(self, item_ids: Sequence[str]) -> None:
        seqs = []
        for item_id in item_ids:
            row = self._row.pop(item_id)
            seqs.append(int(self._seqs[row]))
            del self._seq_id[seqs[-1]]
            last = self._size - 1
            if row != last:  # swap-remove keeps the matrix dense in O(1)
                moved = self._ids[last]
                self._vectors[row] = self._vectors[last]
                self._sqnorms[row] = self._sqnorms[last]
                self._seqs[row] = self._seqs[last]
                self._ids[row] = moved
                self._metas[row] = self._metas[last]
                self._row[moved] = row
            self._ids.pop()
            self._metas.pop()
            self._size = last
        self._ann.removed(np.asarray(seqs, dtype=np.int64))

    # ------------------------------------------------------------- persistence
    def compact(self) -> None:
        """Write a fresh snapshot and start an empty journal (atomic)."""
        if self.directory is None:
            return
        with self._lock:
            directory = self.directory
            gen = self._generation + 1
            n = self._size
            vec_tmp = directory / f".vectors.{gen}.npy.tmp"
            ent_tmp = directory / f".entries.{gen}.json.tmp"
            with open(vec_tmp, "wb") as fh:
                np.save(fh, self._vectors[:n], allow_pickle=False)
                self._sync(fh)
            with open(ent_tmp, "w", encoding="utf-8") as fh:
                json.dump({"dim": self.dim, "ids": self._ids[:n], "metas": self._metas[:n]}, fh)
                self._sync(fh)
            os.replace(vec_tmp, directory / f"vectors.{gen}.npy")
            os.replace(ent_tmp, directory / f"entries.{gen}.json")
            (directory / f"journal.{gen}.log").write_bytes(b"")
            _write_json_atomic(directory / "manifest.json", {"generation": gen, "dim": self.dim}, self._fsync)
            old_journal = self._journal
            self._journal = open(directory / f"journal.{gen}.log", "ab")  # noqa: SIM115 - kept open
            if old_journal is not None:
                old_journal.close()
            self._generation = gen
            self._journal_ops = 0
            for stale in directory.iterdir():
                if _generation_of(stale.name) not in (None, gen):
                    with contextlib.suppress(OSError):
                        stale.unlink()

    def close(self) -> None:
        """Close the journal file (the index stays usable in memory)."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self._ann.close()

    def _log(self, payload: bytes, ops: int) -> None:
        if self.directory is None:
            return
        if self._journal is None:
            self._journal = open(self.directory / f"journal.{self._generation}.log", "ab")  # noqa: SIM115
        try:
            self._journal.write(payload)
            self._journal.flush()
            if self._fsync:
                os.fsync(self._journal.fileno())
        except OSError as exc:
            raise BackendError(f"could not write the vector journal in {self.directory}: {exc}") from exc
        self._journal_ops += ops
        if self._journal_ops > max(1000, self._size // 10):
            self.compact()

    def _load(self) -> None:
        assert self.directory is not None
        manifest = self.directory / "manifest.json"
        if not manifest.exists():
            self.compact()  # generation 1, empty
            return
        try:
            info = json.loads(manifest.read_text())
            gen = int(info["generation"])
            stored_dim = int(info.get("dim", self.dim))
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"vector index manifest in {self.directory} is unreadable: {exc}") from exc
        if stored_dim != self.dim:
            raise ValidationError(f"{self.directory} holds {stored_dim}-D vectors, not {self.dim}-D")
        try:
            with open(self.directory / f"vectors.{gen}.npy", "rb") as fh:
                matrix = np.load(fh, allow_pickle=False)
            entries = json.loads((self.directory / f"entries.{gen}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"vector index in {self.directory} is unreadable: {exc}") from exc
        self._generation = gen
        if len(entries["ids"]):
            self._append_rows(entries["ids"], np.asarray(matrix, dtype=np.float32), entries["metas"])
        journal = self.directory / f"journal.{gen}.log"
        replayed = self._replay(journal.read_bytes() if journal.exists() else b"")
        self._journal = open(journal, "ab")  # noqa: SIM115 - kept open for appends
        self._journal_ops = replayed
        if replayed > max(1000, self._size // 10):
            self.compact()

    def _replay(self, data: bytes) -> int:
        pos = ops = 0
        good_end = 0
        while pos < len(data):
            record = _decode(data, pos, self.dim)
            if record is None:
                log.warning("ignoring a torn record at byte %d of the journal in %s", pos, self.directory)
                break
            op, item_id, meta, vector, pos = record
            if item_id in self._row:
                self._remove_rows([item_id])
            if op == _OP_ADD and vector is not None:
                self._append_rows([item_id], vector.reshape(1, -1), [meta])
            ops += 1
            good_end = pos
        if good_end < len(data) and self.directory is not None:
            # Cut the torn tail so new appends are not hidden behind it.
            with open(self.directory / f"journal.{self._generation}.log", "r+b") as fh:
                fh.truncate(good_end)
        return ops

    def _sync(self, fh: Any) -> None:
        fh.flush()
        if self._fsync:
            os.fsync(fh.fileno())


class _Ann:
    """The optional faiss IVFFlat accelerator (see the module docstring).

    Built from the numpy matrix in a background thread; adds and removes made
    while it builds are queued and applied when it is installed. faiss ids are
    :class:`VectorIndex` sequence numbers, which never change.
    """

    def __init__(self, owner: VectorIndex, *, enabled: bool, min_size: int) -> None:
        self.owner = owner
        self.enabled = enabled
        self.min_size = min_size
        self.index: Any = None
        self.trained_size = 0
        self._thread: threading.Thread | None = None
        self._queued: list[tuple[str, Any, Any]] = []

    @property
    def building(self) -> bool:
        return self._thread is not None

    # While a (re)build runs, changes go both to the queue (for the new IVF) and
    # to the current IVF if there is one, which keeps serving until replaced.
    def added(self, matrix: NDArray[np.float32], seqs: NDArray[np.int64]) -> None:
        if self.building:
            self._queued.append(("add", matrix.copy(), seqs.copy()))
        if self.index is not None:
            self.index.add_with_ids(matrix, seqs)

    def removed(self, seqs: NDArray[np.int64]) -> None:
        if not len(seqs):
            return
        if self.building:
            self._queued.append(("remove", None, seqs.copy()))
        if self.index is not None:
            self.index.remove_ids(seqs)

    def search(self, q: NDArray[np.float32], k: int) -> list[tuple[str, float]] | None:
        """Hits from the IVF, or ``None`` to fall back to exact search."""
        if not self.enabled:
            return None
        owner = self.owner
        n = owner._size
        if n < self.min_size:
            return None
        if self.index is None or n > self.trained_size * IVF_REBUILD_GROWTH:
            self._start_build()
        if self.index is None:
            return None
        dist2, seqs = self.index.search(q.reshape(1, -1), k)
        hits = []
        for s, d2 in zip(seqs[0], dist2[0], strict=True):
            item_id = owner._seq_id.get(int(s))  # -1 (no hit) maps to None
            if item_id is not None:
                hits.append((item_id, float(np.sqrt(max(float(d2), 0.0)))))
        return hits

    def _start_build(self) -> None:
        if self.building:
            return
        try:
            import faiss
        except ImportError:
            log.info("faiss-cpu not installed; vector search stays exact (pip install faiss-cpu==1.15.1)")
            self.enabled = False
            return
        owner = self.owner
        n = owner._size
        vectors = owner._vectors[:n].copy()
        seqs = owner._seqs[:n].copy()
        self._thread = threading.Thread(
            target=self._build, args=(faiss, vectors, seqs), name="vector-ivf-build", daemon=True
        )
        self._thread.start()

    def _build(self, faiss: Any, vectors: NDArray[np.float32], seqs: NDArray[np.int64]) -> None:
        n, dim = vectors.shape
        try:
            nlist = max(16, int(4 * np.sqrt(n)))
            quantizer = faiss.IndexFlatL2(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist)
            # 10 k-means rounds instead of 25: the cells only need to be
            # reasonable (recall is bought with nprobe), and it halves the build.
            index.cp.niter = 10
            rng = np.random.default_rng(0)
            # 40 training points per centroid is faiss' own lower bound without warnings.
            sample = vectors[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
            index.train(sample)
            index.add_with_ids(vectors, seqs)
            index.nprobe = IVF_NPROBE
        except Exception:  # a failed accelerator must never break search
            log.exception("building the faiss IVF index failed; staying exact")
            with self.owner._lock:
                self.enabled = False
                self._thread = None
                self._queued.clear()
            return
        with self.owner._lock:
            for op, matrix, queued_seqs in self._queued:
                if op == "add":
                    index.add_with_ids(matrix, queued_seqs)
                elif len(queued_seqs):
                    index.remove_ids(queued_seqs)
            self._queued.clear()
            self.index = index
            self.trained_size = n
            self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a running build finishes; ``True`` if an IVF is ready."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.index is not None

    def close(self) -> None:
        self.index = None


# ------------------------------------------------------------------- file format


def _encode_add(item_id: str, vector: NDArray[np.float32], meta: str) -> bytes:
    return _frame(_OP_ADD, item_id, meta, np.asarray(vector, dtype="<f4").tobytes())


def _encode_remove(item_id: str) -> bytes:
    return _frame(_OP_REMOVE, item_id, "", b"")


def _frame(op: bytes, item_id: str, meta: str, body: bytes) -> bytes:
    id_b = item_id.encode("utf-8")
    meta_b = meta.encode("utf-8")
    record = _HEADER.pack(op, len(id_b), len(meta_b)) + id_b + meta_b + body
    return record + _CRC.pack(zlib.crc32(record))


def _decode(
    data: bytes, pos: int, dim: int
) -> tuple[bytes, str, str, NDArray[np.float32] | None, int] | None:
    if pos + _HEADER.size > len(data):
        return None
    op, id_len, meta_len = _HEADER.unpack_from(data, pos)
    if op not in (_OP_ADD, _OP_REMOVE):
        return None
    body_len = dim * 4 if op == _OP_ADD else 0
    end = pos + _HEADER.size + id_len + meta_len + body_len
    if end + _CRC.size > len(data):
        return None
    (crc,) = _CRC.unpack_from(data, end)
    if crc != zlib.crc32(data[pos:end]):
        return None
    cursor = pos + _HEADER.size
    item_id = data[cursor : cursor + id_len].decode("utf-8")
    cursor += id_len
    meta = data[cursor : cursor + meta_len].decode("utf-8")
    cursor += meta_len
    vector = None
    if body_len:
        vector = np.frombuffer(data, dtype="<f4", count=dim, offset=cursor).astype(np.float32)
    return op, item_id, meta, vector, end + _CRC.size


def _write_json_atomic(path: Path, value: Any, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _generation_of(name: str) -> int | None:
    for prefix in ("vectors.", "entries.", "journal."):
        if name.startswith(prefix):
            middle = name[len(prefix) :].split(".", 1)[0]
            return int(middle) if middle.isdigit() else None
    return None
