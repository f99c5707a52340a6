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
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.analytics_types import (
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
    "CREATE TABLE IF NOT EXISTS analytics_zone_hours (day TEXT NOT NULL, hour INTEGER NOT NULL, "
    "camera_id TEXT NOT NULL, zone TEXT NOT NULL, visits INTEGER NOT NULL, dwell_sum REAL NOT NULL, "
    "dwell_max REAL NOT NULL, PRIMARY KEY (day, hour, camera_id, zone)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS analytics_rolled_days (day TEXT PRIMARY KEY, visits INTEGER NOT NULL)",
    # Distinct visitors per day, for all cameras ('*') and for each camera.
    "CREATE TABLE IF NOT EXISTS analytics_day_visitors (day TEXT NOT NULL, camera_id TEXT NOT NULL, "
    "visits INTEGER NOT NULL, visitors INTEGER NOT NULL, PRIMARY KEY (day, camera_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS analytics_visits_range "
    "ON visits(started_at, camera_id, customer_id, zone, last_seen_at)",
    "CREATE INDEX IF NOT EXISTS analytics_transactions_range "
    "ON transactions(occurred_at, customer_id, amount_cents, currency)",
)

# Dwell in whole seconds (unixepoch() needs SQLite >= 3.38; Python 3.11 wheels ship 3.40+).
# The planner sometimes prefers the narrower (camera_id, started_at) index,
# which then reads every row from the table; the covering index is faster.
_V = "visits INDEXED BY analytics_visits_range"
_T = "transactions INDEXED BY analytics_transactions_range"
_DWELL = "MAX(0, unixepoch(last_seen_at) - unixepoch(started_at))"


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
                    conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
                    conn.execute("PRAGMA busy_timeout=30000")
                    local.conn = conn
                return conn

            self._connect = connect
        self._indexed = False
        #: Seconds a range scan is reused by the other queries of the same page.
        self.memo_seconds = 5.0
        self._memo_store: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._memo_lock = threading.Lock()

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

    # -- shared scans: one page asks several questions of the same range, so the
    # -- two range scans they need are memoised for a few seconds and reused.
    def _memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._memo_lock:
            hit = self._memo_store.get(key)
            if hit is not None and now - hit[0] < self.memo_seconds:
                return hit[1]
        value = compute()
        with self._memo_lock:
            if len(self._memo_store) > 64:
                self._memo_store.clear()
            self._memo_store[key] = (now, value)
        return value

    _ZH_SELECT = (
        f"SELECT substr(started_at, 1, 10), CAST(substr(started_at, 12, 2) AS INTEGER), camera_id, zone, "
        f"COUNT(*), SUM({_DWELL}), MAX({_DWELL}) FROM {_V} "
    )

    def _zone_hours(self, f: AnalyticsFilter) -> pd.DataFrame:
        """Visits, dwell sum and max per (day, hour, camera, zone): at most days x 24 x cameras rows.

        Days before today come from the ``analytics_zone_hours`` roll-up (see
        :meth:`_refresh_rollup`); today is aggregated live.
        """
        import pandas as pd

        def compute() -> pd.DataFrame:
            today = datetime.now(UTC).date()
            closed_end = min(f.end, today - timedelta(days=1))
            rows: list[tuple[Any, ...]] = []
            if f.start <= closed_end:
                closed = AnalyticsFilter(f.start, closed_end, f.cameras)
                self._refresh_rollup(closed.start, closed.end)
                cam = ""
                if f.cameras:
                    cam = f" AND camera_id IN ({','.join('?' * len(f.cameras))})"
                rows += self._rows(
                    "SELECT day, hour, camera_id, zone, visits, dwell_sum, dwell_max "
                    "FROM analytics_zone_hours "
                    f"WHERE day >= ? AND day <= ? AND visits > 0{cam}",
                    [closed.start.isoformat(), closed.end.isoformat(), *f.cameras],
                )
            if f.end >= today:
                live = AnalyticsFilter(max(f.start, today), f.end, f.cameras)
                sql, params = self._where(live)
                rows += self._rows(f"{self._ZH_SELECT} WHERE {sql} GROUP BY 1, 2, 3, 4", params)
            return pd.DataFrame(
                rows, columns=["day", "hour", "camera_id", "zone", "visits", "dwell_sum", "dwell_max"]
            )

        return self._memo(("zone_hours", f), compute)

    def _refresh_rollup(self, start: date, end: date) -> None:
        """Make ``analytics_zone_hours`` right for the closed days ``start..end``.

        A day's roll-up is trusted while the visits counted for it still match
        (one cheap covering-index count for the whole range); days that gained
        or lost visits (late approvals, erasure, merges of sightings) or were
        never rolled up are rebuilt. Rows hold counts only, no customer ids.
        """
        if not self._indexed:
            self.ensure_indexes()
        lo, hi = AnalyticsFilter(start, end).bounds()
        conn = self._connect()
        actual = conn.execute(
            f"SELECT COUNT(*) FROM {_V} WHERE started_at >= ? AND started_at < ?", (lo, hi)
        ).fetchone()[0]
        rolled = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(visits), 0) FROM analytics_rolled_days "
            "WHERE day >= ? AND day <= ?",
            (start.isoformat(), end.isoformat()),
        ).fetchone()
        days = (end - start).days + 1
        if rolled[0] == days and rolled[1] == actual:
            return
        per_day = dict(
            conn.execute(
                f"SELECT substr(started_at, 1, 10), COUNT(*) FROM {_V} "
                "WHERE started_at >= ? AND started_at < ? GROUP BY 1",
                (lo, hi),
            ).fetchall()
        )
        known = dict(
            conn.execute(
                "SELECT day, visits FROM analytics_rolled_days WHERE day >= ? AND day <= ?",
                (start.isoformat(), end.isoformat()),
            ).fetchall()
        )
        stale = [
            d.isoformat()
            for d in (start + timedelta(days=i) for i in range(days))
            if known.get(d.isoformat()) != per_day.get(d.isoformat(), 0)
        ]
        began = not conn.in_transaction
        if began:
            conn.execute("BEGIN IMMEDIATE")
        try:
            for day in stale:
                d_lo, d_hi = AnalyticsFilter(date.fromisoformat(day), date.fromisoformat(day)).bounds()
                conn.execute("DELETE FROM analytics_zone_hours WHERE day = ?", (day,))
                conn.execute(
                    "INSERT INTO analytics_zone_hours "
                    "(day, hour, camera_id, zone, visits, dwell_sum, dwell_max) "
                    f"{self._ZH_SELECT} WHERE started_at >= ? AND started_at < ? GROUP BY 1, 2, 3, 4",
                    (d_lo, d_hi),
                )
                conn.execute("DELETE FROM analytics_day_visitors WHERE day = ?", (day,))
                conn.execute(
                    "INSERT INTO analytics_day_visitors (day, camera_id, visits, visitors) "
                    f"SELECT ?, '*', COUNT(*), COUNT(DISTINCT customer_id) FROM {_V} "
                    "WHERE started_at >= ? AND started_at < ? "
                    "UNION ALL "
                    f"SELECT ?, camera_id, COUNT(*), COUNT(DISTINCT customer_id) FROM {_V} "
                    "WHERE started_at >= ? AND started_at < ? GROUP BY camera_id",
                    (day, d_lo, d_hi, day, d_lo, d_hi),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO analytics_rolled_days (day, visits) VALUES (?, ?)",
                    (day, per_day.get(day, 0)),
                )
        except BaseException:
            if began:
                conn.execute("ROLLBACK")
            raise
        if began:
            conn.execute("COMMIT")

    def _per_customer(self, f: AnalyticsFilter) -> dict[str, int]:
        """Visits per customer in the range (one row per visitor)."""

        def compute() -> dict[str, int]:
            sql, params = self._where(f)
            rows = self._rows(
                f"SELECT customer_id, COUNT(*) FROM {_V} WHERE {sql} GROUP BY customer_id", params
            )
            return {r[0]: int(r[1]) for r in rows}

        return self._memo(("per_customer", f), compute)

    def _spend_per_customer(self, f: AnalyticsFilter) -> dict[str, int]:
        def compute() -> dict[str, int]:
            sql, params = self._where(f, "occurred_at", cameras=False)
            rows = self._rows(
                f"SELECT customer_id, SUM(amount_cents) FROM {_T} WHERE {sql} AND customer_id IS NOT NULL "
                "GROUP BY customer_id",
                params,
            )
            return {r[0]: int(r[1]) for r in rows}

        return self._memo(("spend", f), compute)

    def _names(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._rows(
                f"SELECT customer_id, name FROM customers "
                f"WHERE customer_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    # ------------------------------------------------------------------ queries
    def kpis(self, f: AnalyticsFilter, today: date | None = None) -> Kpis:
        today = today or datetime.now(UTC).date()
        wk = AnalyticsFilter(week_start(today), today, f.cameras)
        w_sql, w_params = self._where(wk)
        week_row = self._rows(
            "SELECT COUNT(DISTINCT customer_id), "
            f"COUNT(DISTINCT CASE WHEN started_at >= ? THEN customer_id END) FROM {_V} WHERE {w_sql}",
            [day_text(today), *w_params],
        )[0]
        visitors = self._per_customer(f)
        returning = 0
        if visitors:
            # One index seek per visitor on visits(customer_id, started_at).
            lo, _hi = f.bounds()
            cam_sql = ""
            if f.cameras:
                cam_sql = f" AND camera_id IN ({','.join('?' * len(f.cameras))})"
            probe = (
                f"SELECT EXISTS (SELECT 1 FROM visits INDEXED BY visits_customer WHERE customer_id = ? "
                f"AND started_at < ?{cam_sql})"
            )
            conn = self._connect()
            returning = sum(conn.execute(probe, (cid, lo, *f.cameras)).fetchone()[0] for cid in visitors)
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
            visits_in_range=int(sum(visitors.values())),
            visitors_in_range=len(visitors),
            returning_visitors=int(returning),
            new_customers=int(new),
            spend_cents=int(sum(r[1] for r in spend)),
            currency=spend[0][0] if spend else "EUR",
        )

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        today = datetime.now(UTC).date()
        closed_end = min(f.end, today - timedelta(days=1))
        rows: list[tuple[Any, ...]] = []
        live_from = f.start
        if f.start <= closed_end and len(f.cameras) <= 1:
            # Closed days from the roll-up (all cameras, or one camera).
            self._refresh_rollup(f.start, closed_end)
            rows += self._rows(
                "SELECT day, visits, visitors FROM analytics_day_visitors "
                "WHERE day >= ? AND day <= ? AND camera_id = ? AND visits > 0 ORDER BY day",
                [f.start.isoformat(), closed_end.isoformat(), f.cameras[0] if f.cameras else "*"],
            )
            live_from = closed_end + timedelta(days=1)
        if live_from <= f.end:
            sql, params = self._where(AnalyticsFilter(live_from, f.end, f.cameras))
            rows += self._rows(
                f"SELECT substr(started_at, 1, 10) AS day, COUNT(*), COUNT(DISTINCT customer_id) "
                f"FROM {_V} WHERE {sql} GROUP BY day ORDER BY day",
                params,
            )
        return pd.DataFrame(rows, columns=COLUMNS["visits_per_day"])

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        zh = self._zone_hours(f)
        return zero_fill_hours(zh.groupby("hour", as_index=False)["visits"].sum())

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        counts = Counter(self._per_customer(f).values())
        return pd.DataFrame(sorted(counts.items()), columns=COLUMNS["visit_frequency"])

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame:
        import pandas as pd

        visits = self._per_customer(f)
        spend = self._spend_per_customer(f)
        if by == "visits":
            keyed = [(v, spend.get(c, 0), c) for c, v in visits.items() if v > 0]
            ranked = sorted(keyed, key=lambda t: (-t[0], -t[1], t[2]))[:limit]
            rows = [(c, v, s) for v, s, c in ranked]
        else:
            keyed = [(s, visits.get(c, 0), c) for c, s in spend.items() if s > 0]
            ranked = sorted(keyed, key=lambda t: (-t[0], -t[1], t[2]))[:limit]
            rows = [(c, v, s) for s, v, c in ranked]
        names = self._names([r[0] for r in rows])
        return pd.DataFrame(
            [(c, names.get(c, ""), v, s) for c, v, s in rows], columns=COLUMNS["top_customers"]
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
        zh = self._zone_hours(f)
        out = zh.groupby(["camera_id", "zone"], as_index=False)["visits"].sum()
        out = out.sort_values(["visits", "zone"], ascending=[False, True])
        return out[COLUMNS["zone_density"]].reset_index(drop=True)

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame:
        zh = self._zone_hours(f)
        out = zh.groupby("zone", as_index=False).agg(
            visits=("visits", "sum"), dwell_sum=("dwell_sum", "sum"), max_dwell_s=("dwell_max", "max")
        )
        out["avg_dwell_s"] = (out["dwell_sum"] / out["visits"]).round(1)
        out["max_dwell_s"] = out["max_dwell_s"].round(1)
        return out.sort_values("zone")[COLUMNS["dwell_per_zone"]].reset_index(drop=True)
