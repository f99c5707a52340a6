"""Analytics for the embedded backend: SQL aggregation over the SQLite store.

Every query pushes grouping into SQLite and reads back only the aggregated
rows, so the Analytics page stays fast with millions of visits. Range scans
use covering indexes created here (``IF NOT EXISTS``, so they cost nothing
after the first start)::

    visits(started_at, camera_id, customer_id, zone, last_seen_at)
    transactions(occurred_at, customer_id, amount_cents, currency)

Times are the store's fixed-width ISO-8601 UTC text, so ``substr(t, 1, 10)``
is the UTC day, ``substr(t, 12, 2)`` the hour and ``substr(t, 1, 7)`` the month.

>>> a = SqliteAnalytics("data/storelens.db")                    # doctest: +SKIP
>>> a.visits_per_day(AnalyticsFilter.last_days(30)).head()      # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.analytics import (
    COLUMNS,
    AnalyticsFilter,
    Kpis,
    Period,
    RankBy,
    day_text,
    week_start,
    zero_fill_hours,
)

if TYPE_CHECKING:
    import pandas as pd

INDEXES = (
    "CREATE INDEX IF NOT EXISTS analytics_visits_range "
    "ON visits(started_at, camera_id, customer_id, zone, last_seen_at)",
    "CREATE INDEX IF NOT EXISTS analytics_transactions_range "
    "ON transactions(occurred_at, customer_id, amount_cents, currency)",
)

# Dwell in seconds from two fixed-width UTC texts; julianday() understands them.
# The planner sometimes prefers the narrower (camera_id, started_at) index,
# which then reads every row from the table; the covering index is faster.
_V = "visits INDEXED BY analytics_visits_range"
_T = "transactions INDEXED BY analytics_transactions_range"
_DWELL = "MAX(0.0, (julianday(last_seen_at) - julianday(started_at)) * 86400.0)"


class SqliteAnalytics:
    """:class:`core.analytics.AnalyticsQueries` over the local SQLite file.

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
                    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
                    conn.execute("PRAGMA busy_timeout=30000")
                    local.conn = conn
                return conn

            self._connect = connect
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the covering indexes the range queries rely on (idempotent)."""
        conn = self._connect()
        for ddl in INDEXES:
            conn.execute(ddl)
        self._indexed = True

    # ------------------------------------------------------------------ helpers
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self._indexed:
            self.ensure_indexes()
        return [tuple(r) for r in self._connect().execute(sql, params).fetchall()]

    def _frame(self, name: str, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self._rows(sql, params), columns=COLUMNS[name])

    @staticmethod
    def _where(f: AnalyticsFilter, column: str = "started_at", cameras: bool = True) -> tuple[str, list[Any]]:
        lo, hi = f.bounds()
        sql = f"{column} >= ? AND {column} < ?"
        params: list[Any] = [lo, hi]
        if cameras and f.cameras:
            sql += f" AND camera_id IN ({','.join('?' * len(f.cameras))})"
            params.extend(f.cameras)
        return sql, params

    # ------------------------------------------------------------------ queries
    def cameras(self) -> list[str]:
        # Skip-scan over the camera index: one seek per distinct camera.
        rows = self._rows("SELECT DISTINCT camera_id FROM visits ORDER BY camera_id")
        return [r[0] for r in rows]

    def kpis(self, f: AnalyticsFilter, today: date | None = None) -> Kpis:
        today = today or datetime.now(UTC).date()
        wk = AnalyticsFilter(week_start(today), today, f.cameras)
        w_sql, w_params = self._where(wk)
        week_row = self._rows(
            "SELECT COUNT(DISTINCT customer_id), "
            f"COUNT(DISTINCT CASE WHEN started_at >= ? THEN customer_id END) FROM {_V} WHERE {w_sql}",
            [day_text(today), *w_params],
        )[0]
        r_sql, r_params = self._where(f)
        lo, _hi = f.bounds()
        cam_sql = ""
        cam_params: list[Any] = []
        if f.cameras:
            cam_sql = f" AND p.camera_id IN ({','.join('?' * len(f.cameras))})"
            cam_params = list(f.cameras)
        range_row = self._rows(
            f"""
            WITH seen AS (SELECT customer_id, COUNT(*) AS n FROM {_V} WHERE {r_sql} GROUP BY customer_id)
            SELECT COALESCE(SUM(n), 0), COUNT(*),
                   COALESCE(SUM(EXISTS (SELECT 1 FROM visits p WHERE p.customer_id = seen.customer_id
                                        AND p.started_at < ?{cam_sql})), 0)
            FROM seen
            """,
            [*r_params, lo, *cam_params],
        )[0]
        t_sql, t_params = self._where(f, "occurred_at", cameras=False)
        spend = self._rows(
            f"SELECT currency, COALESCE(SUM(amount_cents), 0), COUNT(*) FROM {_T} WHERE {t_sql} "
            "GROUP BY currency ORDER BY COUNT(*) DESC",
            t_params,
        )
        c_sql, c_params = self._where(f, "created_at", cameras=False)
        new = self._rows(f"SELECT COUNT(*) FROM customers WHERE {c_sql}", c_params)[0][0]
        return Kpis(
            visitors_today=int(week_row[1]),
            visitors_this_week=int(week_row[0]),
            visits_in_range=int(range_row[0]),
            visitors_in_range=int(range_row[1]),
            returning_visitors=int(range_row[2]),
            new_customers=int(new),
            spend_cents=int(sum(r[1] for r in spend)),
            currency=spend[0][0] if spend else "EUR",
        )

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        sql, params = self._where(f)
        return self._frame(
            "visits_per_day",
            f"SELECT substr(started_at, 1, 10) AS day, COUNT(*), COUNT(DISTINCT customer_id) "
            f"FROM {_V} WHERE {sql} GROUP BY day ORDER BY day",
            params,
        )

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        sql, params = self._where(f)
        df = self._frame(
            "visits_per_hour",
            f"SELECT CAST(substr(started_at, 12, 2) AS INTEGER) AS hour, COUNT(*) "
            f"FROM {_V} WHERE {sql} GROUP BY hour ORDER BY hour",
            params,
        )
        return zero_fill_hours(df)

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        sql, params = self._where(f)
        return self._frame(
            "visit_frequency",
            f"SELECT n, COUNT(*) FROM (SELECT COUNT(*) AS n FROM {_V} WHERE {sql} GROUP BY customer_id) "
            "GROUP BY n ORDER BY n",
            params,
        )

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame:
        v_sql, v_params = self._where(f)
        t_sql, t_params = self._where(f, "occurred_at", cameras=False)
        key, other = ("visits", "spend_cents") if by == "visits" else ("spend_cents", "visits")
        # Aggregate each side in its own indexed range scan, then join the two
        # small per-customer results (never the raw tables).
        return self._frame(
            "top_customers",
            f"""
            WITH v AS (SELECT customer_id, COUNT(*) AS visits FROM {_V} WHERE {v_sql} GROUP BY customer_id),
                 t AS (SELECT customer_id, SUM(amount_cents) AS spend_cents FROM {_T}
                       WHERE {t_sql} AND customer_id IS NOT NULL GROUP BY customer_id),
                 ids AS (SELECT customer_id FROM v UNION SELECT customer_id FROM t),
                 both_ AS (SELECT ids.customer_id, COALESCE(v.visits, 0) AS visits,
                                  COALESCE(t.spend_cents, 0) AS spend_cents
                           FROM ids LEFT JOIN v USING (customer_id) LEFT JOIN t USING (customer_id))
            SELECT b.customer_id, COALESCE(c.name, ''), b.visits, b.spend_cents
            FROM both_ b LEFT JOIN customers c ON c.customer_id = b.customer_id
            WHERE b.{key} > 0
            ORDER BY b.{key} DESC, b.{other} DESC, b.customer_id
            LIMIT ?
            """,
            [*v_params, *t_params, int(limit)],
        )

    def spend_per_customer(self, f: AnalyticsFilter, period: Period = "month") -> pd.DataFrame:
        t_sql, t_params = self._where(f, "occurred_at", cameras=False)
        if period == "week":
            bucket = "date(substr(occurred_at, 1, 10), 'weekday 0', '-6 days')"
        elif period == "month":
            bucket = "substr(occurred_at, 1, 7)"
        else:
            raise ValueError("period must be 'week' or 'month'")
        return self._frame(
            "spend_per_customer",
            f"""
            SELECT s.period, s.customer_id, COALESCE(c.name, ''), s.n, s.spend
            FROM (SELECT {bucket} AS period, customer_id, COUNT(*) AS n, SUM(amount_cents) AS spend
                  FROM {_T} WHERE {t_sql} AND customer_id IS NOT NULL
                  GROUP BY period, customer_id) s
            LEFT JOIN customers c ON c.customer_id = s.customer_id
            ORDER BY s.period, s.spend DESC, s.customer_id
            """,
            t_params,
        )

    def zone_density(self, f: AnalyticsFilter) -> pd.DataFrame:
        sql, params = self._where(f)
        return self._frame(
            "zone_density",
            f"SELECT camera_id, zone, COUNT(*) AS n, COUNT(DISTINCT customer_id) FROM {_V} WHERE {sql} "
            "GROUP BY camera_id, zone ORDER BY n DESC, zone",
            params,
        )

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame:
        sql, params = self._where(f)
        return self._frame(
            "dwell_per_zone",
            f"SELECT zone, COUNT(*), ROUND(AVG({_DWELL}), 1), ROUND(MAX({_DWELL}), 1) FROM {_V} "
            f"WHERE {sql} GROUP BY zone ORDER BY zone",
            params,
        )
