"""Dashboard sign-in state in the data dir's SQLite file: sessions, login tickets, attempts.

Three small tables live beside the repositories in ``<data_dir>/storelens.db``
(they are created here, on first use, so the repositories' schema is untouched):

``sessions``
    One row per sign-in: the SHA-256 of the random session id (the cookie
    carries the id itself, signed), the user name, when it was created, when
    it expires, and when it was revoked (logout, password reset, user removed).
``login_tickets``
    A one-time, short-lived ticket made by the login form once the password
    was right, redeemed by the ``/session/start`` route that sets the cookie.
    Stored hashed, with the hash of the browser it was made for (see
    :func:`core.web.browser_binding`); redeeming deletes it in the same transaction.
``login_attempts``
    The failed-attempt counter of :class:`SqliteLoginLimiter`: one row per
    reserved attempt, so every dashboard process on the data dir shares it.

Every write runs in one ``BEGIN IMMEDIATE`` transaction
(:meth:`core.local.sqlite.SqliteDatabase.atomic`), which takes SQLite's write
lock first: a check-then-insert cannot interleave with another process's.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import AuthError, NotFoundError
from core.local.sqlite import SqliteDatabase, database
from core.sessions import SessionManager, load_secret
from core.users import User, UserStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_name);
CREATE TABLE IF NOT EXISTS login_tickets (
    ticket_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    next_path TEXT NOT NULL,
    expires_at REAL NOT NULL,
    browser TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_by_key ON login_attempts(key, at);
"""

DB_FILE = "storelens.db"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_READY: set[int] = set()


def _db_for(data_dir: Path) -> SqliteDatabase:
    """The data dir's shared database (this process's connections)."""
    return database(Path(data_dir) / DB_FILE)


def _ensure_schema(db: SqliteDatabase) -> None:
    """Create this module's tables (once per database per process)."""
    if id(db) not in _READY:
        with db.atomic():
            conn = db.connection()
            for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
                conn.execute(statement)
        _READY.add(id(db))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored sign-in (the id itself is never stored, only its hash)."""

    user_name: str
    created_at: float
    expires_at: float
    revoked_at: float | None


class SqliteSessions:
    """Server-side session records and one-time login tickets (times are Unix seconds)."""

    def __init__(self, db: SqliteDatabase, clock: Callable[[], float] = time.time) -> None:
        _ensure_schema(db)
        self.db = db
        self._clock = clock

    @classmethod
    def for_data_dir(cls, data_dir: Path, clock: Callable[[], float] = time.time) -> SqliteSessions:
        return cls(_db_for(data_dir), clock)

    # -- tickets
    def create_ticket(self, user_name: str, next_path: str, ttl_seconds: float, browser: str = "") -> str:
        """A random single-use ticket naming ``user_name``, valid for ``ttl_seconds``.

        ``browser`` (a hash, or empty) is what the redeeming browser must present.
        """
        ticket = secrets.token_urlsafe(32)
        now = self._clock()
        with self.db.atomic():
            conn = self.db.connection()
            conn.execute("DELETE FROM login_tickets WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO login_tickets VALUES (?, ?, ?, ?, ?)",
                (_digest(ticket), user_name, next_path, now + ttl_seconds, browser),
            )
        return ticket

    def redeem_ticket(self, ticket: str) -> tuple[str, str, str] | None:
        """``(user, next path, browser)`` of a live ticket, deleting it; ``None`` if unknown or expired."""
        if not ticket:
            return None
        with self.db.atomic():
            conn = self.db.connection()
            row = conn.execute(
                "SELECT user_name, next_path, expires_at, browser FROM login_tickets WHERE ticket_hash = ?",
                (_digest(ticket),),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM login_tickets WHERE ticket_hash = ?", (_digest(ticket),))
        if row["expires_at"] <= self._clock():
            return None
        return str(row["user_name"]), str(row["next_path"]), str(row["browser"])

    # -- sessions
    def create(self, user_name: str, ttl_seconds: float) -> str:
        """A new session for ``user_name``; returns its random id (only the hash is stored)."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self.db.atomic():
            conn = self.db.connection()
            # Old rows are kept a day past expiry (a refused cookie can be told apart from an unknown one).
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now - 86400,))
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, NULL)",
                (_digest(session_id), user_name, now, now + ttl_seconds),
            )
        return session_id

    def get(self, session_id: str) -> SessionRecord | None:
        """The stored record, live or not (``None`` when unknown)."""
        row = (
            self.db.connection()
            .execute(
                "SELECT user_name, created_at, expires_at, revoked_at FROM sessions WHERE id_hash = ?",
                (_digest(session_id),),
            )
            .fetchone()
        )
        if row is None:
            return None
        return SessionRecord(row["user_name"], row["created_at"], row["expires_at"], row["revoked_at"])

    def lookup(self, session_id: str) -> str | None:
        """The user name of a live session: known, not revoked, not expired; else ``None``."""
        record = self.get(session_id) if session_id else None
        if record is None or record.revoked_at is not None or record.expires_at <= self._clock():
            return None
        return record.user_name

    def revoke(self, session_id: str) -> None:
        with self.db.atomic():
            self.db.connection().execute(
                "UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL",
                (self._clock(), _digest(session_id)),
            )

    def revoke_user(self, user_name: str) -> int:
        """Revoke every live session of ``user_name`` (password reset, removal); returns how many."""
        with self.db.atomic():
            cur = self.db.connection().execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
                (self._clock(), user_name),
            )
        return int(cur.rowcount)


class SqliteLoginLimiter:
    """Failed-attempt limit per key, shared by every process on the data dir.

    Same contract as :class:`core.auth.LoginRateLimiter`: :meth:`reserve`
    counts an attempt as failed *before* the password check, in one
    ``BEGIN IMMEDIATE`` transaction (count the keys' attempts in the window,
    refuse if one is at the limit, else insert a row per key), so N parallel
    attempts from any number of processes check at most ``max_failures``
    passwords. :meth:`release` takes the attempt back when it was right.
    """

    def __init__(
        self,
        db: SqliteDatabase,
        max_failures: int = 5,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _ensure_schema(db)
        self.db = db
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kwargs: object) -> SqliteLoginLimiter:
        return cls(_db_for(data_dir), **kwargs)  # type: ignore[arg-type]

    def _wait(self, keys: tuple[str, ...], now: float) -> float:
        conn = self.db.connection()
        wait = 0.0
        for key in keys:
            rows = conn.execute(
                "SELECT at FROM login_attempts WHERE key = ? AND at > ? ORDER BY at",
                (key, now - self.window),
            ).fetchall()
            if len(rows) >= self.max_failures:
                wait = max(wait, rows[-self.max_failures]["at"] + self.window - now)
        return wait

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again (0 when none is locked)."""
        return self._wait(keys, self._clock())

    def check(self, *keys: str) -> None:
        wait = self.retry_after(*keys)
        if wait > 0:
            raise AuthError(f"too many failed logins; try again in {int(wait) + 1} s")

    def reserve(self, *keys: str) -> float:
        """Count an attempt against every key, or raise ``AuthError`` if one is locked.

        Returns the row id to hand to :meth:`release` (a float, as the in-process limiter's stamp).
        """
        now = self._clock()
        with self.db.atomic():
            conn = self.db.connection()
            conn.execute("DELETE FROM login_attempts WHERE at <= ?", (now - self.window,))
            wait = self._wait(keys, now)
            if wait > 0:
                raise AuthError(f"too many failed attempts; try again in {int(wait) + 1} s")
            first = 0
            for key in keys:
                cur = conn.execute("INSERT INTO login_attempts (key, at) VALUES (?, ?)", (key, now))
                first = first or int(cur.lastrowid or 0)
        return float(first)

    def release(self, stamp: float, *keys: str) -> None:
        """Take back the attempt :meth:`reserve` returned ``stamp`` for."""
        first = int(stamp)
        with self.db.atomic():
            conn = self.db.connection()
            for key in keys:  # reserve() inserted one row per key, with consecutive ids from ``first``
                conn.execute(
                    "DELETE FROM login_attempts WHERE id >= ? AND id < ? AND key = ?",
                    (first, first + len(keys), key),
                )

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self.db.atomic():
            conn = self.db.connection()
            for key in keys:
                conn.execute("INSERT INTO login_attempts (key, at) VALUES (?, ?)", (key, now))

    def succeeded(self, *keys: str) -> None:
        with self.db.atomic():
            conn = self.db.connection()
            for key in keys:
                conn.execute("DELETE FROM login_attempts WHERE key = ?", (key,))


_MANAGERS: dict[tuple[str, int], SessionManager] = {}


def local_session_manager(data_dir: Path) -> SessionManager:
    """The process's :class:`core.sessions.SessionManager` for a local data dir.

    Users (and their current role) come from ``users.json``; the key from
    ``<data_dir>/session-secret``. Shared by the Streamlit scripts and the
    ``/session/*`` routes of the same process.
    """
    key = (str(Path(data_dir).resolve()), os.getpid())
    manager = _MANAGERS.get(key)
    if manager is None:
        users = UserStore.for_data_dir(Path(data_dir))

        def find_user(name: str) -> User | None:
            try:
                return users.get(name)
            except NotFoundError:
                return None

        manager = SessionManager(
            SqliteSessions.for_data_dir(Path(data_dir)), load_secret(Path(data_dir)), find_user
        )
        _MANAGERS[key] = manager
    return manager
