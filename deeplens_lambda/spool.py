"""A bounded on-disk FIFO of outgoing messages (SQLite), so events survive an outage.

Messages are appended in order and removed only after the transport confirmed
delivery, so a broker outage or a process restart loses nothing. The key is
the FaceEvent ``event_id``: putting the same id twice is a no-op, so a retry
never enqueues a duplicate. The spool is bounded (``max_items``): when it is
full the *oldest* messages are dropped and counted in :attr:`Spool.dropped`,
because a camera cannot pause the world; size it for the longest outage you
want to ride out (``max_items`` x ~60 KB per event).

>>> spool = Spool("/var/lib/storelens/spool.db", max_items=10_000)   # doctest: +SKIP
>>> spool.put(event_id, "storelens/store-1/cam-1/faces", payload)     # doctest: +SKIP
True
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from core.models import utcnow


@dataclass(frozen=True, slots=True)
class SpoolItem:
    """One queued message."""

    seq: int
    key: str
    topic: str
    payload: bytes


class Spool:
    """A durable, bounded, ordered, de-duplicating message queue in one SQLite file."""

    def __init__(self, path: str | Path, *, max_items: int = 10_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_items = max_items
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " key TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " enqueued_at TEXT NOT NULL)"
        )
        # Keys already delivered, so a late retry of the same event is not sent twice.
        self._db.execute("CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, sent_at TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', 0)")

    # ------------------------------------------------------------------ writing
    def put(self, key: str, topic: str, payload: bytes) -> bool:
        """Append a message; ``False`` if ``key`` is queued or was already delivered."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM sent WHERE key=?", (key,)).fetchone():
                    self._db.execute("COMMIT")
                    return False
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO queue (key, topic, payload, enqueued_at) VALUES (?,?,?,?)",
                    (key, topic, payload, utcnow().isoformat()),
                )
                added = cur.rowcount == 1
                over = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0] - self.max_items
                if over > 0:
                    self._db.execute(
                        "DELETE FROM queue WHERE seq IN (SELECT seq FROM queue ORDER BY seq LIMIT ?)", (over,)
                    )
                    self._db.execute("UPDATE meta SET value = value + ? WHERE name='dropped'", (over,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def ack(self, item: SpoolItem) -> None:
        """Delivery of ``item`` is confirmed: remove it and remember its key."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM queue WHERE seq=?", (item.seq,))
            self._db.execute("INSERT OR IGNORE INTO sent VALUES (?, ?)", (item.key, utcnow().isoformat()))
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ reading
    def peek(self, limit: int = 100) -> list[SpoolItem]:
        """The oldest ``limit`` messages, in the order they were put."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, key, topic, payload FROM queue ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpoolItem(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0])

    @property
    def dropped(self) -> int:
        """How many messages were dropped because the spool was full."""
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE name='dropped'").fetchone()[0])

    def prune_sent(self, keep: int = 100_000) -> None:
        """Forget all but the newest ``keep`` delivered keys (bounds the file)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM sent WHERE key NOT IN (SELECT key FROM sent ORDER BY sent_at DESC LIMIT ?)",
                (keep,),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
