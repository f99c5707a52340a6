"""Analytics for the embedded backend: the reads of :class:`core.analytics.VisitData` in SQL.

The arithmetic (store visits, KPIs, time zones) is shared with every backend
in :class:`core.analytics.StoreAnalytics`; this module only reads narrow rows
from SQLite. Range scans use covering indexes created here on first use
(``IF NOT EXISTS``, so they cost nothing afterwards)::

    visits(started_at, camera_id, customer_id, zone, last_seen_at)
    visits(customer_id, started_at, last_seen_at)
    transactions(occurred_at, customer_id, amount_cents, currency)

Times come back as Unix seconds (``unixepoch()`` needs SQLite >= 3.38; Python
3.11 wheels ship 3.40+), which pandas turns into local times cheaply.

>>> a = SqliteAnalytics("data/storelens.db")                          # doctest: +SKIP
>>> a.visits_per_day(AnalyticsFilter.last_days(30, tz="Europe/Madrid"))  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.analytics_engine import StoreAnalytics
from core.analytics_types import (
    DEFAULT_GAP_SECONDS,
    SALE_COLUMNS,
    ZONE_TOTAL_COLUMNS,
    ZONE_VISIT_COLUMNS,
    AnalyticsFilter,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalyticsFilter", "SqliteAnalytics", "SqliteVisitData"]

INDEXES = (
    "CREATE INDEX IF NOT EXISTS analytics_visits_range "
    "ON visits(started_at, camera_id, customer_id, zone, last_seen_at)",
    # Per-customer reads (the Customers page's store visits and last seen)
    # without one table lookup per visit for last_seen_at.
    "CREATE INDEX IF NOT EXISTS analytics_visits_customer ON visits(customer_id, started_at, last_seen_at)",
    "CREATE INDEX IF NOT EXISTS analytics_transactions_range "
    "ON transactions(occurred_at, customer_id, amount_cents, currency)",
)

# The planner sometimes prefers the narrower (camera_id, started_at) index,
# which then reads every row from the table; the covering index is faster.
_V = "visits INDEXED BY analytics_visits_range"
_T = "transactions INDEXED BY analytics_transactions_range"


def _text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqliteVisitData:
    """:class:`core.analytics.VisitData` over the local SQLite file.

    ``source`` is the database path or a function returning this thread's
    connection (``SqliteRepositories.connection``), so the dashboard shares the
    repositories' per-thread connections instead of opening more.
    """

    def __init__(self, source: str | Path | Callable[[], sqlite3.Connection]) -> None:
        if callable(source):
            self._connect: Callable[[], sqlite3.Connection] = source
        else:
            path = Path(source)
            local = threading.local()

            def connect() -> sqlite3.Connection:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
                    conn.execute("PRAGMA busy_timeout=30000")
                    local.conn = conn
                return conn

            self._connect = connect
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the covering indexes the range reads rely on (idempotent)."""
        conn = self._connect()
        for ddl in INDEXES:
            conn.execute(ddl)
        self._indexed = True

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if not self._indexed:
            self.ensure_indexes()
        return self._connect().execute(sql, params).fetchall()

    def cameras(self) -> list[str]:
        # Skip-scan over the camera index: one seek per distinct camera.
        return [r[0] for r in self._rows("SELECT DISTINCT camera_id FROM visits ORDER BY camera_id")]

    def _range_sql(self, select: str, lo: int, hi: int, cameras: tuple[str, ...]) -> tuple[str, list[Any]]:
        sql = f"SELECT {select} FROM {_V} WHERE started_at >= ? AND started_at < ?"
        params: list[Any] = [_text(lo), _text(hi)]
        if cameras:
            sql += f" AND camera_id IN ({','.join('?' * len(cameras))})"
            params.extend(cameras)
        return sql, params

    def zone_visits(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        sql, params = self._range_sql(
            "customer_id, unixepoch(started_at), unixepoch(last_seen_at)", lo, hi, cameras
        )
        return pd.DataFrame(self._rows(sql, params), columns=ZONE_VISIT_COLUMNS).astype(
            {"start": "int64", "end": "int64"}
        )

    def zone_totals(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        # Parsing the two timestamps is most of this scan's cost: compute the
        # dwell once per row in a materialised CTE (SUM() and MAX() of the same
        # expression would parse them twice each; a plain subquery is flattened).
        inner, params = self._range_sql(
            "camera_id, zone, MAX(0, unixepoch(last_seen_at) - unixepoch(started_at)) AS dwell",
            lo,
            hi,
            cameras,
        )
        sql = (
            f"WITH d AS MATERIALIZED ({inner}) "
            "SELECT camera_id, zone, COUNT(*), SUM(dwell), MAX(dwell) FROM d GROUP BY camera_id, zone"
        )
        return pd.DataFrame(self._rows(sql, params), columns=ZONE_TOTAL_COLUMNS)

    def sales(self, lo: int, hi: int) -> pd.DataFrame:
        import pandas as pd

        rows = self._rows(
            f"SELECT customer_id, unixepoch(occurred_at), amount_cents, currency FROM {_T} "
            "WHERE occurred_at >= ? AND occurred_at < ?",
            [_text(lo), _text(hi)],
        )
        return pd.DataFrame(rows, columns=SALE_COLUMNS).astype({"at": "int64", "amount_cents": "int64"})

    def first_visits(self, customer_ids: list[str]) -> dict[str, int]:
        # One MIN() per customer, each a single seek on visits(customer_id,
        # started_at); a GROUP BY would read every visit of every customer.
        import json

        rows = self._rows(
            "SELECT j.value, (SELECT unixepoch(MIN(started_at)) FROM visits INDEXED BY visits_customer "
            "WHERE customer_id = j.value) FROM json_each(?) j",
            [json.dumps(customer_ids)],
        )
        return {r[0]: int(r[1]) for r in rows if r[1] is not None}

    def names(self, customer_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            rows = self._rows(
                "SELECT customer_id, name FROM customers "
                f"WHERE customer_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    def visits_of(self, customer_ids: list[str]) -> pd.DataFrame:
        import pandas as pd

        rows: list[Any] = []
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            rows += self._rows(
                "SELECT customer_id, unixepoch(started_at), unixepoch(last_seen_at) "
                "FROM visits INDEXED BY analytics_visits_customer "
                f"WHERE customer_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        return pd.DataFrame(rows, columns=["customer_id", "start", "end"]).astype(
            {"start": "int64", "end": "int64"}
        )

    def spend_of(self, customer_ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            rows = self._rows(
                "SELECT customer_id, SUM(amount_cents) FROM transactions INDEXED BY transactions_customer "
                f"WHERE customer_id IN ({','.join('?' * len(chunk))}) GROUP BY customer_id",
                chunk,
            )
            out.update({r[0]: int(r[1]) for r in rows})
        return out


class SqliteAnalytics(StoreAnalytics):
    """:class:`core.analytics.AnalyticsQueries` for the local backend (SQL reads, shared arithmetic)."""

    def __init__(
        self,
        source: str | Path | Callable[[], sqlite3.Connection],
        *,
        gap_seconds: int = DEFAULT_GAP_SECONDS,
    ) -> None:
        self.visit_data = SqliteVisitData(source)
        super().__init__(self.visit_data, gap_seconds=gap_seconds)

    def ensure_indexes(self) -> None:
        self.visit_data.ensure_indexes()
