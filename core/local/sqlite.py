"""SQLite repositories for the embedded backend.

One database file (``<data_dir>/storelens.db``) in WAL mode holds every
repository. Each thread gets its own connection (Streamlit runs sessions on
threads); :meth:`SqliteRepositories.atomic` opens one ``BEGIN IMMEDIATE``
transaction on the calling thread's connection, and nested ``atomic()`` blocks
join the outer one.

Several processes may open one data dir at once (dashboard, CLI, simulator,
ingest workers). Within a process, every user of one database file (the
repositories and :class:`core.local.faces.LocalFaceIndex`) shares one
:class:`SqliteDatabase` (see :func:`database`), so a face-index write made
inside ``atomic()`` joins the same transaction as the face row. Across
processes SQLite's write lock (``BEGIN IMMEDIATE``) serialises decisions.

Erasure: ``PRAGMA secure_delete=ON`` zeroes deleted content in the file, and
:meth:`SqliteDatabase.checkpoint` (``wal_checkpoint(TRUNCATE)``) empties the
WAL, so an erased row leaves no readable copy on disk.

Times are stored as fixed-width ISO-8601 UTC text (``2026-11-23T21:15:00.000000+00:00``)
so that text order is time order and ``substr(t, 1, 10)`` is the UTC day.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import ConflictError, NotFoundError
from core.local import store_visits
from core.models import (
    AnonymousSighting,
    AuditEntry,
    Customer,
    DeadLetter,
    Face,
    FaceEvent,
    FaceStatus,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    SeenEvent,
    TrackLink,
    Transaction,
    Visit,
    from_stored_time,
    to_stored_time,
    track_key,
)

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    loyalty_id TEXT UNIQUE,
    consent INTEGER NOT NULL DEFAULT 0,
    consent_at TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS pending_identities (
    pending_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    store_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    face_count INTEGER NOT NULL DEFAULT 0,
    suggested_customer_id TEXT,
    suggested_similarity REAL,
    decided_at TEXT,
    decided_by TEXT,
    customer_id TEXT
);
CREATE INDEX IF NOT EXISTS pending_status ON pending_identities(status, expires_at);

CREATE TABLE IF NOT EXISTS faces (
    face_id TEXT PRIMARY KEY,
    event_id TEXT,
    crop_key TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    status TEXT NOT NULL,
    index_face_id TEXT UNIQUE,
    customer_id TEXT,
    pending_id TEXT,
    similarity REAL
);
CREATE INDEX IF NOT EXISTS faces_customer ON faces(customer_id);
CREATE INDEX IF NOT EXISTS faces_pending ON faces(pending_id);
CREATE INDEX IF NOT EXISTS faces_status ON faces(status);

CREATE TABLE IF NOT EXISTS visits (
    visit_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    event_id TEXT,
    similarity REAL
);
CREATE INDEX IF NOT EXISTS visits_customer ON visits(customer_id, started_at);
CREATE INDEX IF NOT EXISTS visits_started ON visits(started_at);
CREATE INDEX IF NOT EXISTS visits_camera ON visits(camera_id, started_at);

CREATE TABLE IF NOT EXISTS transactions (
    transaction_id TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    loyalty_id TEXT,
    customer_id TEXT,
    camera_id TEXT
);
CREATE INDEX IF NOT EXISTS transactions_customer ON transactions(customer_id, occurred_at);
CREATE INDEX IF NOT EXISTS transactions_time ON transactions(occurred_at);

CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    store_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    track_id TEXT NOT NULL,
    detector TEXT NOT NULL,
    confidence REAL NOT NULL,
    bbox TEXT NOT NULL,
    outcome TEXT NOT NULL,
    crop_key TEXT,
    customer_id TEXT,
    pending_id TEXT,
    similarity REAL
);
CREATE INDEX IF NOT EXISTS events_captured ON events(captured_at);
CREATE INDEX IF NOT EXISTS events_camera ON events(camera_id, captured_at);
CREATE INDEX IF NOT EXISTS events_customer ON events(customer_id);
CREATE INDEX IF NOT EXISTS events_pending ON events(pending_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    error_type TEXT NOT NULL,
    event_id TEXT,
    payload BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS audit (
    audit_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject_id, at);

CREATE TABLE IF NOT EXISTS used_tokens (
    nonce TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

-- consent-first mode: someone seen who is not a consented customer (no face, no id)
CREATE TABLE IF NOT EXISTS anonymous_sightings (
    sighting_id TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    people INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS anonymous_first_seen ON anonymous_sightings(first_seen_at);

CREATE TABLE IF NOT EXISTS face_collections (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- The face index's templates (float32 little-endian BLOBs). AUTOINCREMENT
-- makes seq strictly increasing and never reused, so a process's in-memory
-- index catches up with "seq > last seen" plus the deletion log below.
CREATE TABLE IF NOT EXISTS face_vectors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL,
    face_id TEXT NOT NULL UNIQUE,
    external_id TEXT NOT NULL,
    bbox TEXT,
    confidence REAL NOT NULL DEFAULT 1.0,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS face_vectors_collection ON face_vectors(collection, seq);
CREATE INDEX IF NOT EXISTS face_vectors_external ON face_vectors(external_id);

-- Ids removed from face_vectors, in order: only opaque uuids, never a vector.
CREATE TABLE IF NOT EXISTS face_deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    face_id TEXT NOT NULL
);

-- Which owner a camera track was decided to be (core.models.TrackLink).
CREATE TABLE IF NOT EXISTS tracks (
    track_key TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    customer_id TEXT,
    pending_id TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_last_seen ON tracks(last_seen_at);
CREATE INDEX IF NOT EXISTS tracks_customer ON tracks(customer_id);
CREATE INDEX IF NOT EXISTS tracks_pending ON tracks(pending_id);

CREATE TABLE IF NOT EXISTS approvals (
    pending_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    decision TEXT
);
"""


#: Per-process registry: one :class:`SqliteDatabase` per database file.
_DATABASES: dict[str, SqliteDatabase] = {}
_DATABASES_LOCK = threading.Lock()


def database(path: Path | str) -> SqliteDatabase:
    """The process's shared :class:`SqliteDatabase` for ``path`` (created on first use)."""
    resolved = Path(path).resolve()
    key = str(resolved)
    with _DATABASES_LOCK:
        db = _DATABASES.get(key)
        if db is None or db.pid != os.getpid():
            db = _DATABASES[key] = SqliteDatabase(resolved)
        return db


class SqliteDatabase:
    """Per-thread connections to one SQLite file, and transactions over them.

    ``atomic()`` opens one ``BEGIN IMMEDIATE`` transaction on the calling
    thread's connection (taking SQLite's write lock at once, so a
    search -> decide -> write section inside it runs alone across every process
    on the data dir); nested blocks join the outer one. Use :func:`database`
    rather than the constructor so users of one file share the connections.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        #: Bumped on every rollback: caches that read uncommitted rows of this
        #: process must then reload (a rolled-back AUTOINCREMENT value is reused).
        self.rollbacks = 0
        #: Bumped by every face-index write in this process (a cache-check input).
        self.writes = 0
        self._queue_lock = threading.RLock()
        self._queue_fd: int | None = None
        conn = self.connection()
        with _migrate_lock(self.path):
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            columns = {r[1] for r in conn.execute("PRAGMA table_info(anonymous_sightings)")}
            if "people" not in columns:  # data dirs from before hourly roll-ups
                conn.execute("ALTER TABLE anonymous_sightings ADD COLUMN people INTEGER NOT NULL DEFAULT 1")
            # Materialised store visits (kept by triggers; backfilled once on an older data dir).
            store_visits.migrate(conn)
        _restrict(self.path)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit outside ``atomic()``)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._all.append(conn)
        return conn

    def connect(self) -> sqlite3.Connection:
        """A new connection with the data dir's pragmas (callers own it)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL survives power loss too, at the cost of an fsync per commit.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted content is overwritten with zeros, so an erased row does not
        # linger in free pages.
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    @property
    def in_transaction(self) -> bool:
        """Whether this thread is inside ``atomic()``."""
        return bool(getattr(self._local, "depth", 0))

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction on this thread; nested blocks join the outer one."""
        conn = self.connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self._writer_queue():
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            self._local.scrub = False
            try:
                yield
            except BaseException:
                self.rollbacks += 1
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    self.rollbacks += 1
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._local.depth = 0
        if self._local.scrub:
            self._local.scrub = False
            self.checkpoint()

    @contextmanager
    def _writer_queue(self) -> Iterator[None]:
        # Writers queue on an flock before BEGIN IMMEDIATE: the kernel wakes
        # the next one the moment the lock is released, where SQLite's busy
        # handler would sleep in growing steps (up to 100 ms) and let several
        # processes on one data dir mostly wait. SQLite's own lock still
        # guarantees correctness; this only makes the hand-over prompt.
        with self._queue_lock:
            if self._queue_fd is None:
                self._queue_fd = os.open(
                    self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
                )
            fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def scrub_after_commit(self) -> None:
        """Personal data was deleted: empty the WAL once this transaction commits.

        ``secure_delete`` zeroes the rows in the database pages, but the WAL
        still holds older images of those pages until a checkpoint.
        """
        if self.in_transaction:
            self._local.scrub = True
        else:
            self.checkpoint()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Reads that see one consistent state (joins an open transaction)."""
        conn = self.connection()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            with suppress(sqlite3.Error):
                conn.execute("COMMIT")

    def checkpoint(self, attempts: int = 20) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes.

        Run after erasures: deleted rows' old page images live in the WAL
        until then. Readers in other processes can hold it open for a moment,
        so this retries briefly; returns whether the WAL was emptied.
        """
        conn = self.connection()
        if conn.in_transaction:
            self._local.scrub = True  # retried when the open transaction commits
            return False
        for attempt in range(attempts):
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            time.sleep(0.02 * (attempt + 1))
        return False

    def close(self) -> None:
        """Close every connection (they reopen lazily on next use)."""
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


@contextmanager
def _migrate_lock(path: Path) -> Iterator[None]:
    # CREATE TABLE IF NOT EXISTS from several processes starting at once can
    # race on the schema; an flock next to the database serialises them.
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _restrict(path: Path) -> None:
    """Owner-only permissions on the database and its sidecar files."""
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", ".lock"))):
        with suppress(OSError):
            if candidate.exists():
                os.chmod(candidate, 0o600)


to_db_time = to_stored_time
from_db_time = from_stored_time


def _req_time(value: str) -> datetime:
    parsed = from_db_time(value)
    assert parsed is not None
    return parsed


def strip_images(payload: bytes) -> bytes:
    """A dead letter's payload without images: JSON keeps its other fields, anything else goes.

    Fields whose name mentions ``crop``/``image``/``jpeg`` and any string over
    1 KB (base64 image data) are replaced by a note of their size.
    """
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return b"" if payload else payload

    def strip(node: Any, depth: int = 0) -> Any:
        if depth > 20:
            return "[dropped]"
        if isinstance(node, dict):
            return {
                k: (
                    f"[dropped {len(str(v))} chars]"
                    if any(w in str(k).lower() for w in ("crop", "image", "jpeg"))
                    else strip(v, depth + 1)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [strip(v, depth + 1) for v in node]
        if isinstance(node, str) and len(node) > 1024:
            return f"[dropped {len(node)} chars]"
        return node

    try:
        return json.dumps(strip(value), sort_keys=True).encode()
    except (ValueError, RecursionError):
        return b""


class _Base:
    def __init__(self, db: SqliteRepositories) -> None:
        self._db = db

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()


class SqliteCustomers(_Base):
    def add(self, customer: Customer) -> None:
        try:
            self._conn().execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", _customer_row(customer))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"customer {customer.customer_id} or loyalty id already exists") from exc

    def get(self, customer_id: str) -> Customer:
        row = self._conn().execute("SELECT * FROM customers WHERE customer_id=?", (customer_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no customer {customer_id}")
        return _customer(row)

    def update(self, customer: Customer) -> None:
        row = _customer_row(customer)
        try:
            cur = self._conn().execute(
                "UPDATE customers SET name=?, email=?, loyalty_id=?, consent=?, consent_at=?, notes=?,"
                " created_at=?, updated_at=? WHERE customer_id=?",
                (*row[1:], row[0]),
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"loyalty id {customer.loyalty_id} belongs to another customer") from exc
        if cur.rowcount == 0:
            raise NotFoundError(f"no customer {customer.customer_id}")

    def delete(self, customer_id: str) -> None:
        self._conn().execute("DELETE FROM customers WHERE customer_id=?", (customer_id,))

    def list(self, search: str | None = None, limit: int = 1000) -> list[Customer]:
        if search:
            like = f"%{search.strip().lower()}%"
            rows = self._conn().execute(
                "SELECT * FROM customers WHERE lower(name) LIKE ? OR lower(coalesce(email,'')) LIKE ?"
                " OR lower(coalesce(loyalty_id,'')) LIKE ? OR customer_id = ? ORDER BY name LIMIT ?",
                (like, like, like, search.strip(), limit),
            )
        else:
            rows = self._conn().execute("SELECT * FROM customers ORDER BY name LIMIT ?", (limit,))
        return [_customer(r) for r in rows]

    def find_by_loyalty_id(self, loyalty_id: str) -> Customer | None:
        row = self._conn().execute("SELECT * FROM customers WHERE loyalty_id=?", (loyalty_id,)).fetchone()
        return _customer(row) if row else None

    def count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM customers").fetchone()[0])


class SqliteFaces(_Base):
    def add(self, face: Face) -> None:
        try:
            self._conn().execute("INSERT INTO faces VALUES (?,?,?,?,?,?,?,?,?,?,?)", _face_row(face))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"face {face.face_id} already exists") from exc

    def get(self, face_id: str) -> Face:
        row = self._conn().execute("SELECT * FROM faces WHERE face_id=?", (face_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no face {face_id}")
        return _face(row)

    def update(self, face: Face) -> None:
        row = _face_row(face)
        cur = self._conn().execute(
            "UPDATE faces SET event_id=?, crop_key=?, captured_at=?, camera_id=?, zone=?, status=?,"
            " index_face_id=?, customer_id=?, pending_id=?, similarity=? WHERE face_id=?",
            (*row[1:], row[0]),
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no face {face.face_id}")

    def delete(self, face_id: str) -> None:
        self._conn().execute("DELETE FROM faces WHERE face_id=?", (face_id,))

    def by_customer(self, customer_id: str) -> list[Face]:
        rows = self._conn().execute(
            "SELECT * FROM faces WHERE customer_id=? ORDER BY captured_at", (customer_id,)
        )
        return [_face(r) for r in rows]

    def count_templates(self, customer_id: str) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT count(*) FROM faces WHERE customer_id=? AND index_face_id IS NOT NULL", (customer_id,)
            )
            .fetchone()
        )
        return int(row[0])

    def by_pending(self, pending_id: str) -> list[Face]:
        rows = self._conn().execute(
            "SELECT * FROM faces WHERE pending_id=? ORDER BY captured_at", (pending_id,)
        )
        return [_face(r) for r in rows]

    def by_status(self, status: FaceStatus) -> list[Face]:
        rows = self._conn().execute(
            "SELECT * FROM faces WHERE status=? ORDER BY captured_at", (status.value,)
        )
        return [_face(r) for r in rows]

    def by_index_face_ids(self, index_face_ids: Sequence[str]) -> dict[str, Face]:
        ids = list(index_face_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn().execute(f"SELECT * FROM faces WHERE index_face_id IN ({marks})", ids)
        return {r["index_face_id"]: _face(r) for r in rows}


class SqliteVisits(_Base):
    def add(self, visit: Visit) -> None:
        self._conn().execute(
            "INSERT INTO visits VALUES (?,?,?,?,?,?,?,?,?)",
            (
                visit.visit_id,
                visit.customer_id,
                visit.store_id,
                visit.camera_id,
                visit.zone,
                to_db_time(visit.started_at),
                to_db_time(visit.last_seen_at),
                visit.event_id,
                visit.similarity,
            ),
        )

    def latest_for_customer(self, customer_id: str) -> Visit | None:
        row = (
            self._conn()
            .execute(
                "SELECT * FROM visits WHERE customer_id=? ORDER BY last_seen_at DESC LIMIT 1", (customer_id,)
            )
            .fetchone()
        )
        return _visit(row) if row else None

    def extend(self, visit_id: str, last_seen_at: datetime) -> None:
        self._conn().execute(
            "UPDATE visits SET last_seen_at=max(last_seen_at, ?) WHERE visit_id=?",
            (to_db_time(last_seen_at), visit_id),
        )

    def by_customer(self, customer_id: str) -> list[Visit]:
        rows = self._conn().execute(
            "SELECT * FROM visits WHERE customer_id=? ORDER BY started_at", (customer_id,)
        )
        return [_visit(r) for r in rows]

    def recent_for_customer(self, customer_id: str, limit: int) -> list[Visit]:
        rows = self._conn().execute(
            "SELECT * FROM visits WHERE customer_id=? ORDER BY started_at DESC LIMIT ?", (customer_id, limit)
        )
        return [_visit(r) for r in rows]

    def between(self, start: datetime, end: datetime) -> list[Visit]:
        rows = self._conn().execute(
            "SELECT * FROM visits WHERE started_at >= ? AND started_at < ? ORDER BY started_at",
            (to_db_time(start), to_db_time(end)),
        )
        return [_visit(r) for r in rows]

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int:
        cur = self._conn().execute(
            "UPDATE visits SET customer_id=? WHERE customer_id=?", (to_customer_id, from_customer_id)
        )
        return cur.rowcount

    def delete_by_customer(self, customer_id: str) -> int:
        return self._conn().execute("DELETE FROM visits WHERE customer_id=?", (customer_id,)).rowcount


class SqlitePending(_Base):
    def add(self, pending: PendingIdentity) -> None:
        try:
            self._conn().execute(
                "INSERT INTO pending_identities VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _pending_row(pending)
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"pending identity {pending.pending_id} already exists") from exc

    def get(self, pending_id: str) -> PendingIdentity:
        row = (
            self._conn()
            .execute("SELECT * FROM pending_identities WHERE pending_id=?", (pending_id,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no pending identity {pending_id}")
        return _pending(row)

    def update(self, pending: PendingIdentity) -> None:
        row = _pending_row(pending)
        cur = self._conn().execute(
            "UPDATE pending_identities SET kind=?, status=?, store_id=?, created_at=?, last_seen_at=?,"
            " expires_at=?, face_count=?, suggested_customer_id=?, suggested_similarity=?, decided_at=?,"
            " decided_by=?, customer_id=? WHERE pending_id=?",
            (*row[1:], row[0]),
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no pending identity {pending.pending_id}")

    def delete(self, pending_id: str) -> None:
        self._conn().execute("DELETE FROM pending_identities WHERE pending_id=?", (pending_id,))

    def list(self, status: PendingStatus | None = PendingStatus.PENDING) -> list[PendingIdentity]:
        if status is None:
            rows = self._conn().execute("SELECT * FROM pending_identities ORDER BY last_seen_at DESC")
        else:
            rows = self._conn().execute(
                "SELECT * FROM pending_identities WHERE status=? ORDER BY last_seen_at DESC", (status.value,)
            )
        return [_pending(r) for r in rows]

    def expired(self, now: datetime) -> builtins.list[PendingIdentity]:
        rows = self._conn().execute(
            "SELECT * FROM pending_identities WHERE status=? AND expires_at < ? ORDER BY expires_at",
            (PendingStatus.PENDING.value, to_db_time(now)),
        )
        return [_pending(r) for r in rows]


class SqliteTransactions(_Base):
    def add(self, transaction: Transaction) -> bool:
        t = transaction
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO transactions VALUES (?,?,?,?,?,?,?,?)",
            (
                t.transaction_id,
                t.store_id,
                to_db_time(t.occurred_at),
                t.amount_cents,
                t.currency,
                t.loyalty_id,
                t.customer_id,
                t.camera_id,
            ),
        )
        return cur.rowcount == 1

    def by_customer(self, customer_id: str) -> list[Transaction]:
        rows = self._conn().execute(
            "SELECT * FROM transactions WHERE customer_id=? ORDER BY occurred_at", (customer_id,)
        )
        return [_transaction(r) for r in rows]

    def between(self, start: datetime, end: datetime) -> list[Transaction]:
        rows = self._conn().execute(
            "SELECT * FROM transactions WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at",
            (to_db_time(start), to_db_time(end)),
        )
        return [_transaction(r) for r in rows]

    def link(self, transaction_id: str, customer_id: str | None) -> None:
        cur = self._conn().execute(
            "UPDATE transactions SET customer_id=? WHERE transaction_id=?", (customer_id, transaction_id)
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no transaction {transaction_id}")

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int:
        return (
            self._conn()
            .execute(
                "UPDATE transactions SET customer_id=? WHERE customer_id=?",
                (to_customer_id, from_customer_id),
            )
            .rowcount
        )

    def unlink_customer(self, customer_id: str) -> int:
        # The sale stays (it is the shop's bookkeeping); only the link to the
        # person and the loyalty id that identifies them go.
        return (
            self._conn()
            .execute(
                "UPDATE transactions SET customer_id=NULL, loyalty_id=NULL WHERE customer_id=?",
                (customer_id,),
            )
            .rowcount
        )


class SqliteEvents(_Base):
    def is_processed(self, event_id: str) -> bool:
        return (
            self._conn().execute("SELECT 1 FROM events WHERE event_id=?", (event_id,)).fetchone() is not None
        )

    def record(
        self,
        event: FaceEvent,
        crop_key: str | None,
        result_outcome: str,
        customer_id: str | None,
        pending_id: str | None,
        similarity: float | None,
    ) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                event.event_id,
                to_db_time(datetime.now(UTC)),
                to_db_time(event.captured_at),
                event.store_id,
                event.camera_id,
                event.zone,
                event.track_id,
                event.detector,
                event.confidence,
                json.dumps(event.bbox.to_dict()),
                result_outcome,
                crop_key,
                customer_id,
                pending_id,
                similarity,
            ),
        )
        return cur.rowcount == 1

    def recent(
        self,
        limit: int = 100,
        camera_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> list[SeenEvent]:
        where: list[str] = []
        args: list[str | None] = []
        if camera_id:
            where.append("e.camera_id=?")
            args.append(camera_id)
        if outcome:
            where.append("e.outcome=?")
            args.append(outcome)
        if since:
            where.append("e.captured_at>=?")
            args.append(to_db_time(since))
        sql = (
            "SELECT e.*, c.name AS customer_name FROM events e LEFT JOIN customers c"
            " ON c.customer_id = e.customer_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY e.captured_at DESC LIMIT ?"
        )
        rows = self._conn().execute(sql, (*args, limit))
        return [
            SeenEvent(
                event_id=r["event_id"],
                captured_at=_req_time(r["captured_at"]),
                store_id=r["store_id"],
                camera_id=r["camera_id"],
                zone=r["zone"],
                outcome=r["outcome"],
                crop_key=r["crop_key"],
                customer_id=r["customer_id"],
                customer_name=r["customer_name"],
                pending_id=r["pending_id"],
                similarity=r["similarity"],
            )
            for r in rows
        ]

    def forget_customer(self, customer_id: str) -> int:
        self._drop_letter_images("SELECT event_id FROM events WHERE customer_id=?", (customer_id,))
        self._db.db.scrub_after_commit()
        return (
            self._conn()
            .execute(
                "UPDATE events SET customer_id=NULL, crop_key=NULL, similarity=NULL, outcome='erased'"
                " WHERE customer_id=?",
                (customer_id,),
            )
            .rowcount
        )

    def forget_pending(self, pending_id: str) -> int:
        self._drop_letter_images("SELECT event_id FROM events WHERE pending_id=?", (pending_id,))
        self._db.db.scrub_after_commit()
        return (
            self._conn()
            .execute(
                "UPDATE events SET pending_id=NULL, crop_key=NULL, similarity=NULL, outcome='erased'"
                " WHERE pending_id=?",
                (pending_id,),
            )
            .rowcount
        )

    def attribute_pending(self, pending_id: str, customer_id: str) -> int:
        return (
            self._conn()
            .execute("UPDATE events SET customer_id=? WHERE pending_id=?", (customer_id, pending_id))
            .rowcount
        )

    def reassign_customer(self, from_customer_id: str, to_customer_id: str) -> int:
        return (
            self._conn()
            .execute(
                "UPDATE events SET customer_id=? WHERE customer_id=?", (to_customer_id, from_customer_id)
            )
            .rowcount
        )

    def move_crop(self, event_id: str, crop_key: str) -> None:
        self._conn().execute("UPDATE events SET crop_key=? WHERE event_id=?", (crop_key, event_id))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Record a rejected input; the same event failing the same way again is stored once.

        The log is then held to ``dead_letter_max_count`` letters and
        ``dead_letter_max_bytes`` of payload (images are dropped oldest first,
        then whole letters).
        """
        conn = self._conn()
        if letter.event_id is not None:
            seen = conn.execute(
                "SELECT 1 FROM dead_letters WHERE event_id=? AND reason=?", (letter.event_id, letter.reason)
            ).fetchone()
            if seen is not None:
                return
        conn.execute(
            "INSERT INTO dead_letters VALUES (?,?,?,?,?,?,?)",
            (
                letter.dead_letter_id,
                to_db_time(letter.received_at),
                letter.source,
                letter.reason,
                letter.error_type,
                letter.event_id,
                letter.payload,
            ),
        )
        self._cap_dead_letters()

    def prune_dead_letters(self, now: datetime) -> int:
        """Drop images from letters older than the retention; returns how many letters changed."""
        cutoff = now - timedelta(hours=self._db.dead_letter_image_hours)
        rows = (
            self._conn()
            .execute(
                "SELECT dead_letter_id, payload FROM dead_letters"
                " WHERE received_at < ? AND length(payload) > 0",
                (to_db_time(cutoff),),
            )
            .fetchall()
        )
        changed = 0
        for row in rows:
            stripped = strip_images(bytes(row["payload"]))
            if stripped != bytes(row["payload"]):
                self._conn().execute(
                    "UPDATE dead_letters SET payload=? WHERE dead_letter_id=?",
                    (stripped, row["dead_letter_id"]),
                )
                changed += 1
        if changed:
            self._db.db.scrub_after_commit()
        return changed

    def _cap_dead_letters(self) -> None:
        conn = self._conn()
        max_count, max_bytes = self._db.dead_letter_max_count, self._db.dead_letter_max_bytes
        conn.execute(
            "DELETE FROM dead_letters WHERE dead_letter_id IN (SELECT dead_letter_id FROM dead_letters"
            " ORDER BY received_at DESC LIMIT -1 OFFSET ?)",
            (max_count,),
        )
        total = conn.execute("SELECT coalesce(sum(length(payload)), 0) FROM dead_letters").fetchone()[0]
        if total <= max_bytes:
            return
        for row in conn.execute(
            "SELECT dead_letter_id, payload FROM dead_letters WHERE length(payload) > 0 ORDER BY received_at"
        ).fetchall():
            old = bytes(row["payload"])
            new = strip_images(old)
            if len(new) > 4096:  # not an event we can strip: keep only its head
                new = new[:4096]
            conn.execute(
                "UPDATE dead_letters SET payload=? WHERE dead_letter_id=?", (new, row["dead_letter_id"])
            )
            total -= len(old) - len(new)
            if total <= max_bytes:
                break

    def _drop_letter_images(self, event_ids_sql: str, args: tuple[Any, ...]) -> None:
        conn = self._conn()
        for row in conn.execute(
            f"SELECT dead_letter_id, payload FROM dead_letters WHERE event_id IN ({event_ids_sql})", args
        ).fetchall():
            conn.execute(
                "UPDATE dead_letters SET payload=? WHERE dead_letter_id=?",
                (strip_images(bytes(row["payload"])), row["dead_letter_id"]),
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._conn().execute("SELECT * FROM dead_letters ORDER BY received_at DESC LIMIT ?", (limit,))
        return [
            DeadLetter(
                dead_letter_id=r["dead_letter_id"],
                received_at=_req_time(r["received_at"]),
                source=r["source"],
                reason=r["reason"],
                error_type=r["error_type"],
                event_id=r["event_id"],
                payload=bytes(r["payload"]),
            )
            for r in rows
        ]


class SqliteAudit(_Base):
    def append(self, entry: AuditEntry) -> None:
        self._conn().execute(
            "INSERT INTO audit VALUES (?,?,?,?,?,?)",
            (
                entry.audit_id,
                to_db_time(entry.at),
                entry.actor,
                entry.action,
                entry.subject_id,
                json.dumps(entry.details, sort_keys=True, default=str),
            ),
        )

    def list(self, subject_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        if subject_id:
            rows = self._conn().execute(
                "SELECT * FROM audit WHERE subject_id=? ORDER BY at DESC LIMIT ?", (subject_id, limit)
            )
        else:
            rows = self._conn().execute("SELECT * FROM audit ORDER BY at DESC LIMIT ?", (limit,))
        return [
            AuditEntry(
                audit_id=r["audit_id"],
                at=_req_time(r["at"]),
                actor=r["actor"],
                action=r["action"],
                subject_id=r["subject_id"],
                details=json.loads(r["details"]),
            )
            for r in rows
        ]


class SqliteTokens(_Base):
    def consume(self, nonce: str, expires_at: datetime) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO used_tokens VALUES (?, ?)", (nonce, to_db_time(expires_at))
        )
        return cur.rowcount == 1


class SqliteAnonymousSightings(_Base):
    def add(self, sighting: AnonymousSighting) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO anonymous_sightings"
            " (sighting_id, store_id, camera_id, zone, first_seen_at, last_seen_at, people)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                sighting.sighting_id,
                sighting.store_id,
                sighting.camera_id,
                sighting.zone,
                to_db_time(sighting.first_seen_at),
                to_db_time(sighting.last_seen_at),
                sighting.people,
            ),
        )
        return cur.rowcount == 1

    def extend(self, sighting_id: str, first_seen_at: datetime, last_seen_at: datetime) -> None:
        self._conn().execute(
            "UPDATE anonymous_sightings SET first_seen_at = min(first_seen_at, ?),"
            " last_seen_at = max(last_seen_at, ?) WHERE sighting_id = ?",
            (to_db_time(first_seen_at), to_db_time(last_seen_at), sighting_id),
        )

    def delete(self, sighting_ids: Sequence[str]) -> int:
        conn, gone = self._conn(), 0
        for start in range(0, len(sighting_ids), 500):
            chunk = list(sighting_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            gone += conn.execute(
                f"DELETE FROM anonymous_sightings WHERE sighting_id IN ({marks})", chunk
            ).rowcount
        return gone

    def between(self, start: datetime, end: datetime) -> list[AnonymousSighting]:
        rows = self._conn().execute(
            "SELECT * FROM anonymous_sightings WHERE first_seen_at >= ? AND first_seen_at < ?"
            " ORDER BY first_seen_at",
            (to_db_time(start), to_db_time(end)),
        )
        return [
            AnonymousSighting(
                sighting_id=r["sighting_id"],
                store_id=r["store_id"],
                camera_id=r["camera_id"],
                zone=r["zone"],
                first_seen_at=_req_time(r["first_seen_at"]),
                last_seen_at=_req_time(r["last_seen_at"]),
                people=int(r["people"]),
            )
            for r in rows
        ]


class SqliteTracks(_Base):
    def get(self, store_id: str, camera_id: str, track_id: str) -> TrackLink | None:
        row = (
            self._conn()
            .execute("SELECT * FROM tracks WHERE track_key=?", (track_key(store_id, camera_id, track_id),))
            .fetchone()
        )
        return _track(row) if row else None

    def claim(self, link: TrackLink) -> TrackLink:
        with self._db.atomic():  # insert-if-absent and read back in one transaction
            self._conn().execute("INSERT OR IGNORE INTO tracks VALUES (?,?,?,?,?,?,?,?)", _track_row(link))
            stored = self.get(link.store_id, link.camera_id, link.track_id)
        assert stored is not None
        return stored

    def put(self, link: TrackLink) -> None:
        self._conn().execute("INSERT OR REPLACE INTO tracks VALUES (?,?,?,?,?,?,?,?)", _track_row(link))

    def forget(self, owner_id: str) -> int:
        cur = self._conn().execute(
            "DELETE FROM tracks WHERE customer_id=? OR pending_id=?", (owner_id, owner_id)
        )
        return cur.rowcount

    def prune(self, before: datetime) -> int:
        cur = self._conn().execute("DELETE FROM tracks WHERE last_seen_at < ?", (to_db_time(before),))
        return cur.rowcount


class SqliteRepositories:
    """Every repository over one SQLite file. Implements ``core.ports.Repositories``."""

    def __init__(
        self,
        path: Path | str,
        *,
        dead_letter_image_hours: int = 72,
        dead_letter_max_count: int = 1000,
        dead_letter_max_bytes: int = 20_000_000,
    ) -> None:
        self.db = database(path)
        self.path = self.db.path
        self.dead_letter_image_hours = dead_letter_image_hours
        self.dead_letter_max_count = dead_letter_max_count
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.customers = SqliteCustomers(self)
        self.faces = SqliteFaces(self)
        self.visits = SqliteVisits(self)
        self.pending = SqlitePending(self)
        self.transactions = SqliteTransactions(self)
        self.events = SqliteEvents(self)
        self.audit = SqliteAudit(self)
        self.tokens = SqliteTokens(self)
        self.anonymous = SqliteAnonymousSightings(self)
        self.tracks = SqliteTracks(self)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit outside ``atomic()``)."""
        return self.db.connection()

    def atomic(self) -> AbstractContextManager[None]:
        """One ``BEGIN IMMEDIATE`` transaction on this thread; nested blocks join the outer one.

        It takes SQLite's write lock at once, so it is also the decision lock:
        a search -> decide -> write section inside it runs alone across every
        process on the data dir.
        """
        return self.db.atomic()

    def checkpoint(self) -> bool:
        """Empty the WAL (after erasures); see :meth:`SqliteDatabase.checkpoint`."""
        return self.db.checkpoint()

    def table_counts(self) -> dict[str, int]:
        """Row counts of every table (used by erasure checks and ``storelens status``)."""
        conn = self.connection()
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}

    def close(self) -> None:
        self.db.close()


# ------------------------------------------------------------------ row mapping


def _customer_row(c: Customer) -> tuple[Any, ...]:
    return (
        c.customer_id,
        c.name,
        c.email,
        c.loyalty_id,
        int(c.consent),
        to_db_time(c.consent_at),
        c.notes,
        to_db_time(c.created_at),
        to_db_time(c.updated_at),
    )


def _customer(r: sqlite3.Row) -> Customer:
    return Customer(
        customer_id=r["customer_id"],
        name=r["name"],
        email=r["email"],
        loyalty_id=r["loyalty_id"],
        consent=bool(r["consent"]),
        consent_at=from_db_time(r["consent_at"]),
        notes=r["notes"],
        created_at=_req_time(r["created_at"]),
        updated_at=_req_time(r["updated_at"]),
    )


def _face_row(f: Face) -> tuple[Any, ...]:
    return (
        f.face_id,
        f.event_id,
        f.crop_key,
        to_db_time(f.captured_at),
        f.camera_id,
        f.zone,
        f.status.value,
        f.index_face_id,
        f.customer_id,
        f.pending_id,
        f.similarity,
    )


def _face(r: sqlite3.Row) -> Face:
    return Face(
        face_id=r["face_id"],
        event_id=r["event_id"],
        crop_key=r["crop_key"],
        captured_at=_req_time(r["captured_at"]),
        camera_id=r["camera_id"],
        zone=r["zone"],
        status=FaceStatus(r["status"]),
        index_face_id=r["index_face_id"],
        customer_id=r["customer_id"],
        pending_id=r["pending_id"],
        similarity=r["similarity"],
    )


def _visit(r: sqlite3.Row) -> Visit:
    return Visit(
        visit_id=r["visit_id"],
        customer_id=r["customer_id"],
        store_id=r["store_id"],
        camera_id=r["camera_id"],
        zone=r["zone"],
        started_at=_req_time(r["started_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
        event_id=r["event_id"],
        similarity=r["similarity"],
    )


def _pending_row(p: PendingIdentity) -> tuple[Any, ...]:
    return (
        p.pending_id,
        p.kind.value,
        p.status.value,
        p.store_id,
        to_db_time(p.created_at),
        to_db_time(p.last_seen_at),
        to_db_time(p.expires_at),
        p.face_count,
        p.suggested_customer_id,
        p.suggested_similarity,
        to_db_time(p.decided_at),
        p.decided_by,
        p.customer_id,
    )


def _pending(r: sqlite3.Row) -> PendingIdentity:
    return PendingIdentity(
        pending_id=r["pending_id"],
        kind=PendingKind(r["kind"]),
        status=PendingStatus(r["status"]),
        store_id=r["store_id"],
        created_at=_req_time(r["created_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
        expires_at=_req_time(r["expires_at"]),
        face_count=r["face_count"],
        suggested_customer_id=r["suggested_customer_id"],
        suggested_similarity=r["suggested_similarity"],
        decided_at=from_db_time(r["decided_at"]),
        decided_by=r["decided_by"],
        customer_id=r["customer_id"],
    )


def _track_row(t: TrackLink) -> tuple[Any, ...]:
    return (
        t.key,
        t.store_id,
        t.camera_id,
        t.track_id,
        t.customer_id,
        t.pending_id,
        to_db_time(t.first_seen_at),
        to_db_time(t.last_seen_at),
    )


def _track(r: sqlite3.Row) -> TrackLink:
    return TrackLink(
        store_id=r["store_id"],
        camera_id=r["camera_id"],
        track_id=r["track_id"],
        customer_id=r["customer_id"],
        pending_id=r["pending_id"],
        first_seen_at=_req_time(r["first_seen_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
    )


def _transaction(r: sqlite3.Row) -> Transaction:
    return Transaction(
        transaction_id=r["transaction_id"],
        store_id=r["store_id"],
        occurred_at=_req_time(r["occurred_at"]),
        amount_cents=r["amount_cents"],
        currency=r["currency"],
        loyalty_id=r["loyalty_id"],
        customer_id=r["customer_id"],
        camera_id=r["camera_id"],
    )
