"""Analytics for the embedded backend: the reads of :class:`core.analytics.VisitData` in SQL.

The KPI arithmetic is shared with every backend in
:class:`core.analytics.StoreAnalytics`; this module answers its summaries from
the store visits and roll-ups SQLite keeps by triggers
(:mod:`core.local.store_visits`): a grouped scan per visitor, the per-day and
per-hour roll-ups, the quarter-hour zone roll-up, grouped scans of sales. A
camera filter that leaves cameras out, or a time zone other than the
roll-ups', is computed the reference way from narrow reads. Range scans use
covering indexes (``IF NOT EXISTS``, so they cost nothing afterwards)::

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
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core.analytics_engine import (
    StoreAnalytics,
    stay_stats,
    stay_stats_from_zone_visits,
)
from core.analytics_engine import store_visits as store_visits_of
from core.analytics_types import (
    COLUMNS,
    DEFAULT_GAP_SECONDS,
    SALE_COLUMNS,
    ZONE_TOTAL_COLUMNS,
    ZONE_VISIT_COLUMNS,
    AnalyticsFilter,
    Period,
    SaleStats,
    StayStats,
)
from core.local import store_visits

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


_EPOCH_DAY = date(1970, 1, 1)


def _stay_index(f: AnalyticsFilter) -> str:
    # A short range reads its slice of the start index (then sorts by customer);
    # a long one walks the customer index in order, skipping other dates.
    return "store_visits_started" if f.days <= 60 else "store_visits_customer"


def _period_starts(f: AnalyticsFilter, period: Period) -> list[int]:
    """Local day numbers (days since 1970-01-01) of each week's Monday / month's first in ``f``."""
    first = f.start - timedelta(days=f.start.weekday()) if period == "week" else f.start.replace(day=1)
    out = []
    while first <= f.end:
        out.append((first - _EPOCH_DAY).days)
        if period == "week":
            first += timedelta(days=7)
        else:
            first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _week(d: date) -> int:
    """The roll-ups' week number of a local date (see ``customer_weeks``)."""
    return ((d - _EPOCH_DAY).days + 3) // 7


def _month(d: date) -> int:
    return d.year * 12 + d.month - 1


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _split(
    start: date, end: date, months: bool = True
) -> tuple[list[int], list[int], list[tuple[date, date]]]:
    """``[start, end]`` (local days, inclusive) as whole months, whole weeks and the days left over.

    The roll-ups answer the whole periods in a few thousand rows; only the
    leftover days (runs of ``(first, last)``) are read row by row.
    """
    whole_months: list[int] = []
    segments = [(start, end)]
    one = timedelta(days=1)
    if months:
        first = start if start.day == 1 else _next_month(start)
        d = first
        while _next_month(d) - one <= end:
            whole_months.append(_month(d))
            d = _next_month(d)
        if whole_months:  # contiguous: what is left lies before and after them
            segments = [(start, first - one), (d, end)]
    weeks: list[int] = []
    days: list[tuple[date, date]] = []
    for lo, hi in segments:
        d = lo
        while d <= hi:
            if d.weekday() == 0 and d + timedelta(days=6) <= hi:
                weeks.append(_week(d))
                d += timedelta(days=7)
                continue
            if days and days[-1][1] == d - one:
                days[-1] = (days[-1][0], d)
            else:
                days.append((d, d))
            d += one
    return whole_months, weeks, days


def _local_days(stays: pd.DataFrame, tz: str) -> list[tuple[str, str]]:
    """``(customer_id, local day)`` of each store visit (``customer_id``, ``start``)."""
    import pandas as pd

    if stays.empty:
        return []
    days = pd.to_datetime(stays["start"], unit="s", utc=True).dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
    return list(zip(stays["customer_id"], days, strict=True))


def _text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqliteVisitData:
    """:class:`core.analytics.VisitData` over the local SQLite file.

    ``source`` is the database path or a function returning this thread's
    connection (``SqliteRepositories.connection``), so the dashboard shares the
    repositories' per-thread connections instead of opening more.
    """

    def __init__(
        self, source: str | Path | Callable[[], sqlite3.Connection], *, timezone: str | None = None
    ) -> None:
        self.timezone = timezone
        self._ready: tuple[int, str] | None = None
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

    def _rows_for(self, sql: str, customer_ids: list[str]) -> list[Any]:
        """``sql`` run per chunk of 500 ids (SQLite's bound-parameter limit), ``{ids}`` their placeholders."""
        rows: list[Any] = []
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            rows += self._rows(sql.format(ids=",".join("?" * len(chunk))), chunk)
        return rows

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

    # ------------------------------------------------ materialised store visits
    def _built(self, gap: int) -> tuple[int, str] | None:
        """``(gap, tz)`` of the derived tables when they serve ``gap`` (re-timed to ours first)."""
        if self._ready is not None and self._ready[0] == gap:
            return self._ready
        conn = self._connect()
        have = store_visits.built(conn)
        if have is None:
            return None  # a database never opened by SqliteDatabase: no triggers
        want = (gap, self.timezone or have[1])
        if have != want:
            store_visits.ensure(conn, *want)
        self._ready = want
        return want

    def _rollup_days(self, lo: int, hi: int, tz: str | None = None) -> tuple[date, date, ZoneInfo] | None:
        """The local days ``[first, last]`` that ``[lo, hi)`` spans when the roll-ups can answer it.

        That is when the roll-ups exist, are kept in ``tz`` (default: whichever
        they are kept in) and ``lo`` and ``hi`` are local midnights there.
        """
        have = self._ready if self._ready is not None else store_visits.built(self._connect())
        if have is None or (tz is not None and tz != have[1]):
            return None
        zone = ZoneInfo(have[1])
        first = datetime.fromtimestamp(lo, zone).date()
        after = datetime.fromtimestamp(hi, zone).date()
        midnight = datetime.combine(first, time(), zone).timestamp()
        if midnight != lo or datetime.combine(after, time(), zone).timestamp() != hi or after <= first:
            return None
        return first, after - timedelta(days=1), zone

    @staticmethod
    def _epochs(run: tuple[date, date], zone: ZoneInfo) -> list[int]:
        return [
            int(datetime.combine(run[0], time(), zone).timestamp()),
            int(datetime.combine(run[1] + timedelta(days=1), time(), zone).timestamp()),
        ]

    def _per_customer_stays(self, f: AnalyticsFilter) -> list[Any]:
        """``(customer_id, store visits, first start, last start)`` in ``f`` from the roll-ups.

        One grouped query per source (months, weeks, leftover days), each at
        most one row per customer, merged in Python: a single GROUP BY over
        their UNION would sort every row.
        """
        zone = ZoneInfo(f.tz)
        months, weeks, days = _split(f.start, f.end)
        parts: list[list[Any]] = []
        for table, periods in (("customer_months", months), ("customer_weeks", weeks)):
            if periods:
                parts.append(
                    self._rows(
                        f"SELECT customer_id, SUM(stays), MIN(first), MAX(last) FROM {table} "
                        f"WHERE period IN ({','.join('?' * len(periods))}) GROUP BY customer_id",
                        periods,
                    )
                )
        if days:
            params: list[Any] = []
            for run in days:
                params += self._epochs(run, zone)
            ranges = " OR ".join(["(started_at >= ? AND started_at < ?)"] * len(days))
            parts.append(
                self._rows(
                    "SELECT customer_id, COUNT(*), MIN(started_at), MAX(started_at) "
                    f"FROM store_visits INDEXED BY store_visits_started WHERE {ranges} GROUP BY customer_id",
                    params,
                )
            )
        if len(parts) == 1:
            return parts[0]
        merged: dict[str, list[int]] = {}
        for rows in parts:
            for cid, n, first, last in rows:
                have = merged.get(cid)
                if have is None:
                    merged[cid] = [n, first, last]
                else:
                    have[0] += n
                    have[1] = min(have[1], first)
                    have[2] = max(have[2], last)
        return [(cid, *v) for cid, v in merged.items()]

    def _has_tables(self) -> bool:
        return self._ready is not None or store_visits.built(self._connect()) is not None

    def stay_counts(self, customer_ids: list[str], gap: int) -> dict[str, tuple[int, int]] | None:
        """All-time ``(store visits, last seen)`` per customer from ``store_visits`` (None: not kept)."""
        if self._built(gap) is None:
            return None
        rows = self._rows_for(
            "SELECT customer_id, COUNT(*), MAX(last_seen_at) FROM store_visits "
            "WHERE customer_id IN ({ids}) GROUP BY customer_id",
            customer_ids,
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def stay_stats(self, f: AnalyticsFilter, gap_seconds: int) -> StayStats:
        lo, hi = f.epochs()
        built = self._built(gap_seconds)
        every_camera = not f.cameras or set(f.cameras) >= set(self.cameras())
        if built is None or not every_camera:
            # Some cameras only: stays of those cameras' zone visits, joined in pandas.
            return stay_stats_from_zone_visits(self, lo, hi, f, gap_seconds)
        import pandas as pd

        if built[1] == f.tz:
            rows = self._per_customer_stays(f)  # whole weeks and months from the roll-ups
        else:
            rows = self._rows(
                "SELECT customer_id, COUNT(*), MIN(started_at), MAX(started_at) "
                f"FROM store_visits INDEXED BY {_stay_index(f)} "
                "WHERE started_at >= ? AND started_at < ? GROUP BY customer_id",
                [lo, hi],
            )
        per = pd.DataFrame(rows, columns=["customer_id", "store_visits", "first", "last"]).set_index(
            "customer_id"
        )
        if built[1] == f.tz:
            day0 = (f.start - _EPOCH_DAY).days
        else:
            # Roll-ups in another time zone: the few figures that need local
            # days and hours come from the store visits themselves.
            rows = self._rows(
                "SELECT customer_id, started_at FROM store_visits WHERE started_at >= ? AND started_at < ?",
                [lo, hi],
            )
            stats = stay_stats(pd.DataFrame(rows, columns=["customer_id", "start"]), f.tz)
            return self._with_boundary(StayStats(per, stats.per_day, stats.grid), f, gap_seconds)
        days = self._rows(
            "SELECT local_day, stays, visitors FROM stay_days WHERE local_day BETWEEN ? AND ? AND stays > 0",
            [day0, day0 + f.days - 1],
        )
        per_day = pd.DataFrame(
            [((_EPOCH_DAY + timedelta(days=d)).isoformat(), n, v) for d, n, v in days],
            columns=["day", "store_visits", "visitors"],
        ).set_index("day")
        hours = self._rows(
            "SELECT (local_hour / 24 + 3) % 7, local_hour % 24, SUM(stays) FROM stay_hours "
            "WHERE local_hour BETWEEN ? AND ? GROUP BY 1, 2 HAVING SUM(stays) > 0",
            [day0 * 24, (day0 + f.days) * 24 - 1],
        )
        grid = pd.DataFrame(hours, columns=["weekday", "hour", "store_visits"])
        stats = StayStats(per.astype("int64"), per_day.astype("int64"), grid.astype("int64"))
        return self._with_boundary(stats, f, gap_seconds)

    def _with_boundary(self, stats: StayStats, f: AnalyticsFilter, gap: int) -> StayStats:
        """Add the store visits the range's own join finds inside longer ones that began earlier.

        The figures join zone visits from one gap before the range on (see
        :func:`core.analytics_engine.stay_stats_from_zone_visits`), so a stay
        that began before that, and still runs into the range, leaves in the
        range the parts its later zone visits make alone. ``store_visits``
        holds the whole stay; those parts are joined here, from the few
        zone visits of such stays.
        """
        import pandas as pd

        lo, hi = f.epochs()
        longest = self._rows(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?", [store_visits.LONGEST_KEY]
        )
        span = int(longest[0][0]) if longest else 0
        boundary = self._rows(
            "SELECT customer_id, ended_at FROM store_visits INDEXED BY store_visits_started "
            "WHERE started_at >= ? AND started_at < ? AND ended_at >= ?",
            [lo - gap - span - 1, lo - gap, lo],
        )
        if not boundary:
            return stats
        zone_rows: list[Any] = []
        for cid, end in boundary:
            zone_rows += self._rows(
                "SELECT customer_id, unixepoch(started_at), unixepoch(last_seen_at) "
                "FROM visits INDEXED BY analytics_visits_customer "
                "WHERE customer_id = ? AND started_at >= ? AND started_at < ?",
                [cid, _text(lo - gap), _text(min(end + 1, hi))],
            )
        pieces = store_visits_of(pd.DataFrame(zone_rows, columns=ZONE_VISIT_COLUMNS), gap)
        pieces = pieces[(pieces["start"] >= lo) & (pieces["start"] < hi)]
        if pieces.empty:
            return stats
        extra = stay_stats(pieces.reset_index(drop=True), f.tz)
        per = pd.concat([stats.per_customer, extra.per_customer])
        per = per.groupby(level=0).agg({"store_visits": "sum", "first": "min", "last": "max"})
        per.index.name = "customer_id"
        # Visitors per day: a customer already counted that day by a whole stay is not new.
        ids = sorted(set(pieces["customer_id"]))
        whole = self._rows(
            "SELECT customer_id, started_at FROM store_visits "
            f"WHERE customer_id IN ({','.join('?' * len(ids))}) AND started_at >= ? AND started_at < ?",
            [*ids, lo, hi],
        )
        seen = {(c, d) for c, d in _local_days(pd.DataFrame(whole, columns=["customer_id", "start"]), f.tz)}
        added: dict[str, int] = {}
        for pair in set(_local_days(pieces, f.tz)) - seen:
            added[pair[1]] = added.get(pair[1], 0) + 1
        per_day = stats.per_day.add(extra.per_day.assign(visitors=0), fill_value=0)
        per_day["visitors"] += pd.Series(added).reindex(per_day.index, fill_value=0)
        grid = (
            pd.concat([stats.grid, extra.grid])
            .groupby(["weekday", "hour"], as_index=False)["store_visits"]
            .sum()
        )
        return StayStats(per.astype("int64"), per_day.sort_index().astype("int64"), grid.astype("int64"))

    def zone_totals(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        if lo % 900 == 0 and hi % 900 == 0 and self._has_tables():
            # From the quarter-hour roll-up (kept by triggers; gap-independent).
            sql = (
                "SELECT camera_id, zone, SUM(zone_visits), SUM(dwell_sum), MAX(dwell_max) FROM zone_quarters "
                "WHERE quarter >= ? AND quarter < ?"
            )
            params: list[Any] = [lo // 900, hi // 900]
            if cameras:
                sql += f" AND camera_id IN ({','.join('?' * len(cameras))})"
                params.extend(cameras)
            rows = self._rows(sql + " GROUP BY camera_id, zone", params)
            return pd.DataFrame(rows, columns=ZONE_TOTAL_COLUMNS)
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

    def sale_stats(self, lo: int, hi: int) -> SaleStats:
        import pandas as pd

        span = self._rollup_days(lo, hi)
        if span is None:
            # One scan of the covering index: per customer (NULL = unattributed) and currency.
            rows = self._rows(
                f"SELECT customer_id, currency, COUNT(*), SUM(amount_cents) FROM {_T} "
                "WHERE occurred_at >= ? AND occurred_at < ? GROUP BY customer_id, currency",
                [_text(lo), _text(hi)],
            )
        else:
            # Whole months and weeks from the sale roll-ups ('' = unattributed), the rest row by row.
            first, last, zone = span
            months, weeks, days = _split(first, last)
            parts: list[str] = []
            params: list[Any] = []
            for table, periods in (("sale_months", months), ("sale_weeks", weeks)):
                if periods:
                    parts.append(
                        f"SELECT NULLIF(customer_id, '') AS c, currency AS m, transactions AS k, "
                        f"spend_cents AS v FROM {table} WHERE period IN ({','.join('?' * len(periods))})"
                    )
                    params += periods
            for run in days:
                parts.append(
                    f"SELECT customer_id AS c, currency AS m, 1 AS k, amount_cents AS v FROM {_T} "
                    "WHERE occurred_at >= ? AND occurred_at < ?"
                )
                params += [_text(t) for t in self._epochs(run, zone)]
            rows = self._rows(
                "SELECT c, m, SUM(k), SUM(v) FROM (" + " UNION ALL ".join(parts) + ") GROUP BY c, m", params
            )
        frame = pd.DataFrame(rows, columns=["customer_id", "currency", "transactions", "spend_cents"])
        counts = frame.groupby("currency")["transactions"].sum()
        linked = frame[frame["customer_id"].notna()]
        per = linked.groupby("customer_id")[["spend_cents", "transactions"]].sum()
        return SaleStats(
            linked_cents=int(linked["spend_cents"].sum()),
            unattributed_cents=int(frame.loc[frame["customer_id"].isna(), "spend_cents"].sum()),
            currency=str(min(counts.index[counts == counts.max()])) if len(counts) else "EUR",
            per_customer=per.astype("int64"),
        )

    def spend_per_period(self, f: AnalyticsFilter, period: Period) -> pd.DataFrame:
        import pandas as pd

        lo, hi = f.epochs()
        # Each period's first local midnight as stored UTC text: the period of a
        # sale is then a few text comparisons in SQL (no time parsing, any time
        # zone), and no single sale reaches Python.
        zone = ZoneInfo(f.tz)
        starts = _period_starts(f, period)
        labels = [
            d.isoformat() if period == "week" else d.strftime("%Y-%m")
            for d in (_EPOCH_DAY + timedelta(days=n) for n in starts)
        ]
        bounds = [
            _text(int(datetime.combine(_EPOCH_DAY + timedelta(days=n), time(), zone).timestamp()))
            for n in starts
        ]
        number = "CASE " + " ".join(
            f"WHEN occurred_at >= '{b}' THEN {i}" for i, b in reversed(list(enumerate(bounds)))
        )
        if self._rollup_days(lo, hi, f.tz) is not None:
            rows = self._spend_from_rollups(f, period, starts, zone)
        else:
            rows = self._rows(
                f"SELECT {number} ELSE 0 END AS n, customer_id, COUNT(*), SUM(amount_cents) FROM {_T} "
                "WHERE occurred_at >= ? AND occurred_at < ? AND customer_id IS NOT NULL "
                "GROUP BY n, customer_id",
                [_text(lo), _text(hi)],
            )
        return pd.DataFrame(
            [(labels[n], c, k, v) for n, c, k, v in rows],
            columns=["period", "customer_id", "transactions", "spend_cents"],
        )

    def _spend_from_rollups(
        self, f: AnalyticsFilter, period: Period, starts: list[int], zone: ZoneInfo
    ) -> list[Any]:
        """``(period index, customer, transactions, spend)``: whole periods from the sale roll-ups."""
        table = "sale_weeks" if period == "week" else "sale_months"
        parts: list[str] = []
        params: list[Any] = []
        whole: list[int] = []
        first_period = None
        for i, n in enumerate(starts):
            begin = _EPOCH_DAY + timedelta(days=n)
            stop = begin + timedelta(days=6) if period == "week" else _next_month(begin) - timedelta(days=1)
            key = _week(begin) if period == "week" else _month(begin)
            first_period = key if first_period is None else first_period
            clip = (max(begin, f.start), min(stop, f.end))
            if clip == (begin, stop):
                whole.append(key)
                continue
            # A period the range cuts: its whole weeks (inside a month) and days.
            _m, weeks, days = _split(*clip, months=False)
            if weeks:
                parts.append(
                    f"SELECT {i} AS n, customer_id AS c, transactions AS k, spend_cents AS v FROM sale_weeks "
                    f"WHERE period IN ({','.join('?' * len(weeks))}) AND customer_id <> ''"
                )
                params += weeks
            for run in days:
                parts.append(
                    f"SELECT {i} AS n, customer_id AS c, 1 AS k, amount_cents AS v FROM {_T} "
                    "WHERE occurred_at >= ? AND occurred_at < ? AND customer_id IS NOT NULL"
                )
                params += [_text(t) for t in self._epochs(run, zone)]
        if whole:
            parts.append(
                f"SELECT period - {int(first_period or 0)} AS n, customer_id AS c, transactions AS k, "
                f"spend_cents AS v FROM {table} "
                f"WHERE period IN ({','.join('?' * len(whole))}) AND customer_id <> ''"
            )
            params += whole
        if not parts:
            return []
        return self._rows(
            "SELECT n, c, SUM(k), SUM(v) FROM (" + " UNION ALL ".join(parts) + ") GROUP BY n, c", params
        )

    def first_visits(self, customer_ids: list[str]) -> dict[str, int]:
        # One MIN() per customer, each a single seek on visits(customer_id,
        # started_at); a GROUP BY would read every visit of every customer.
        import json

        if self._has_tables():
            # A customer's first store visit starts with their first zone visit (any gap):
            # an integer seek in store_visits instead of parsing a time.
            sql = (
                "SELECT j.value, (SELECT MIN(started_at) FROM store_visits INDEXED BY store_visits_customer "
                "WHERE customer_id = j.value) FROM json_each(?) j"
            )
        else:
            sql = (
                "SELECT j.value, (SELECT unixepoch(MIN(started_at)) FROM visits INDEXED BY visits_customer "
                "WHERE customer_id = j.value) FROM json_each(?) j"
            )
        rows = self._rows(sql, [json.dumps(customer_ids)])
        return {r[0]: int(r[1]) for r in rows if r[1] is not None}

    def names(self, customer_ids: list[str]) -> dict[str, str]:
        sql = "SELECT customer_id, name FROM customers WHERE customer_id IN ({ids})"
        rows = self._rows_for(sql, customer_ids)
        return {r[0]: r[1] for r in rows}

    def visits_of(self, customer_ids: list[str]) -> pd.DataFrame:
        import pandas as pd

        rows = self._rows_for(
            "SELECT customer_id, unixepoch(started_at), unixepoch(last_seen_at) "
            "FROM visits INDEXED BY analytics_visits_customer WHERE customer_id IN ({ids})",
            customer_ids,
        )
        return pd.DataFrame(rows, columns=["customer_id", "start", "end"]).astype(
            {"start": "int64", "end": "int64"}
        )

    def spend_of(self, customer_ids: list[str]) -> dict[str, int]:
        rows = self._rows_for(
            "SELECT customer_id, SUM(amount_cents) FROM transactions INDEXED BY transactions_customer "
            "WHERE customer_id IN ({ids}) GROUP BY customer_id",
            customer_ids,
        )
        return {r[0]: int(r[1]) for r in rows}


class SqliteAnalytics(StoreAnalytics):
    """:class:`core.analytics.AnalyticsQueries` for the local backend (SQL reads, shared arithmetic).

    ``timezone`` is the store's (``STORELENS_TIMEZONE``): the per-day and
    per-hour roll-ups are kept in it (re-timed once when the data dir's differ).
    Without it they stay as built; filters in another zone are then computed
    from the store visits themselves (slower, same figures).
    """

    def __init__(
        self,
        source: str | Path | Callable[[], sqlite3.Connection],
        *,
        gap_seconds: int = DEFAULT_GAP_SECONDS,
        timezone: str | None = None,
    ) -> None:
        self.visit_data = SqliteVisitData(source, timezone=timezone)
        super().__init__(self.visit_data, gap_seconds=gap_seconds)
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()

    def version(self) -> int:
        """SQLite's ``PRAGMA data_version`` on a connection of our own that never writes.

        It changes whenever any other connection, in this process or another
        (ingest, CLI, simulator), commits to the file, and only then; the same
        technique :class:`core.local.faces.LocalFaceIndex` uses for its cache.
        """
        with self._watch_lock:
            if self._watch is None:
                path = self.visit_data._connect().execute("PRAGMA database_list").fetchone()[2]
                self._watch = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def ensure_indexes(self) -> None:
        self.visit_data.ensure_indexes()

    def customer_summary(self, customer_ids: list[str]) -> pd.DataFrame:
        import pandas as pd

        ids = list(dict.fromkeys(customer_ids))
        counts = self.visit_data.stay_counts(ids, self.gap_seconds)
        if counts is None:
            return super().customer_summary(ids)
        spend = self.visit_data.spend_of(ids)
        out = pd.DataFrame(
            {
                "customer_id": ids,
                "store_visits": [counts.get(c, (0, None))[0] for c in ids],
                "last_seen": pd.to_datetime([counts.get(c, (0, None))[1] for c in ids], unit="s", utc=True),
                "spend_cents": [int(spend.get(c, 0)) for c in ids],
            }
        )
        return out[COLUMNS["customer_summary"]]
