"""Store analytics: the numbers behind the dashboard's Analytics page.

Words, as the page defines them in its help text:

* a **zone visit** is one row of the ``visits`` table: a customer seen at one
  camera / zone, from their first to their last sighting there;
* a **store visit** is one entry-to-exit stay: a customer's zone visits joined
  while each starts within ``gap_seconds`` (the ingest's ``visit_gap_seconds``,
  30 min) of the latest moment they were seen so far;
* **visitors**: distinct customers with a store visit starting in the range;
* **returning visitors**: visitors who had an earlier store visit (before the
  range, or an earlier one inside it);
* **new customers**: visitors whose first store visit ever falls in the range;
* **average days between visits**: the mean gap between consecutive store
  visits of the same customer inside the range;
* **spend linked / unattributed**: sales in the range with / without a customer;
* **conversion**: share of visitors with a linked purchase in the range.

All days and hours are in the store's time zone (``AnalyticsFilter.tz``, from
``STORELENS_TIMEZONE``); a filter's ``end`` day is inclusive.

:class:`StoreAnalytics` computes everything from a :class:`VisitData` (three
narrow range reads and a first-visit lookup) in pandas; the local backend
reads them with SQL (:class:`core.local.analytics.SqliteAnalytics`), any other
backend through the repositories (:class:`RepositoryAnalytics`).

>>> f = AnalyticsFilter(date(2026, 11, 1), date(2026, 11, 30), tz="Europe/Madrid")
>>> f.datetimes()[0].isoformat()
'2026-10-31T23:00:00+00:00'
>>> f.previous().start, f.previous().end
(datetime.date(2026, 10, 2), datetime.date(2026, 10, 31))
"""

from __future__ import annotations

import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd

    from core.ports import Repositories

Period = Literal["week", "month"]
RankBy = Literal["visits", "spend"]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_GAP_SECONDS = 1800

#: Column names of every frame, so both implementations and the page agree.
COLUMNS: dict[str, list[str]] = {
    "visits_per_day": ["day", "store_visits", "visitors"],
    "visits_per_hour": ["hour", "store_visits"],
    "weekday_hour": ["weekday", "hour", "store_visits"],
    "visit_frequency": ["store_visits", "visitors"],
    "top_customers": ["customer_id", "name", "store_visits", "spend_cents"],
    "spend_per_customer": ["period", "customer_id", "name", "transactions", "spend_cents"],
    "zone_density": ["camera_id", "zone", "zone_visits"],
    "dwell_per_zone": ["zone", "zone_visits", "avg_dwell_s", "max_dwell_s"],
    "customer_summary": ["customer_id", "store_visits", "last_seen", "spend_cents"],
}
#: The raw frames a :class:`VisitData` returns (times are Unix seconds, UTC).
ZONE_VISIT_COLUMNS = ["customer_id", "start", "end"]
ZONE_TOTAL_COLUMNS = ["camera_id", "zone", "zone_visits", "dwell_sum", "dwell_max"]
SALE_COLUMNS = ["customer_id", "at", "amount_cents", "currency"]


@dataclass(frozen=True, slots=True)
class AnalyticsFilter:
    """A date range in the store's time zone (both ends inclusive) and, optionally, some cameras."""

    start: date
    end: date
    cameras: tuple[str, ...] = ()
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the end date is before the start date")
        ZoneInfo(self.tz)  # raises for an unknown zone name

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def datetimes(self) -> tuple[datetime, datetime]:
        """``[lo, hi)``: local midnight of ``start`` and of the day after ``end``, as UTC datetimes."""
        zone = ZoneInfo(self.tz)
        lo = datetime.combine(self.start, time(), tzinfo=zone).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        return lo, hi

    def epochs(self) -> tuple[int, int]:
        lo, hi = self.datetimes()
        return int(lo.timestamp()), int(hi.timestamp())

    def bounds(self) -> tuple[str, str]:
        """``[lo, hi)`` in the SQLite store's fixed-width UTC text form."""
        lo, hi = self.datetimes()
        return _utc_text(lo), _utc_text(hi)

    def previous(self) -> AnalyticsFilter:
        """The period of the same length just before this one (for comparisons)."""
        return AnalyticsFilter(
            self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.cameras, self.tz
        )

    @classmethod
    def last_days(
        cls, days: int, today: date | None = None, cameras: tuple[str, ...] = (), tz: str = "UTC"
    ) -> AnalyticsFilter:
        today = today or datetime.now(ZoneInfo(tz)).date()
        return cls(today - timedelta(days=days - 1), today, cameras, tz)


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def day_text(day: date) -> str:
    """Midnight UTC of ``day`` in the fixed-width text the SQLite store uses."""
    return f"{day.isoformat()}T00:00:00.000000+00:00"


def week_start(day: date) -> date:
    """The Monday on or before ``day`` (weeks are labelled by their Monday)."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Kpis:
    """Headline numbers of one range (see the module docstring for the definitions)."""

    visitors: int
    store_visits: int
    zone_visits: int
    returning_visitors: int
    new_customers: int
    avg_days_between_visits: float | None
    spend_linked_cents: int
    spend_unattributed_cents: int
    buyers: int
    currency: str

    @property
    def returning_rate(self) -> float | None:
        """Share of visitors with an earlier store visit; None when nobody visited."""
        return self.returning_visitors / self.visitors if self.visitors else None

    @property
    def conversion(self) -> float | None:
        """Share of visitors who bought (a linked purchase in the range)."""
        return self.buyers / self.visitors if self.visitors else None

    @property
    def spend_cents(self) -> int:
        return self.spend_linked_cents + self.spend_unattributed_cents


@runtime_checkable
class VisitData(Protocol):
    """The reads analytics needs from a backend; frames have plain columns, times in Unix seconds."""

    def cameras(self) -> list[str]:
        """Camera ids that have recorded visits, sorted."""

    def zone_visits(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        """Zone visits starting in ``[lo, hi)``, who and when only (:data:`ZONE_VISIT_COLUMNS`)."""

    def zone_totals(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        """Zone visits, dwell sum and longest dwell (s) per camera and zone (:data:`ZONE_TOTAL_COLUMNS`)."""

    def sales(self, lo: int, hi: int) -> pd.DataFrame:
        """Transactions in ``[lo, hi)`` (:data:`SALE_COLUMNS`; ``customer_id`` None when unlinked)."""

    def first_visits(self, customer_ids: list[str]) -> dict[str, int]:
        """Each customer's earliest zone visit start, any camera, all time."""

    def names(self, customer_ids: list[str]) -> dict[str, str]:
        """Display names; erased customers are missing."""

    def visits_of(self, customer_ids: list[str]) -> pd.DataFrame:
        """All zone visits of some customers, any time (``customer_id, start, end``)."""

    def spend_of(self, customer_ids: list[str]) -> dict[str, int]:
        """All-time linked spend of some customers, in cents."""


@runtime_checkable
class AnalyticsQueries(Protocol):
    """Aggregations for the Analytics page; every frame has the columns in :data:`COLUMNS`."""

    def cameras(self) -> list[str]: ...

    def kpis(self, f: AnalyticsFilter) -> Kpis: ...

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        """Store visits and visitors per local day, every day of the range (zero-filled)."""

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        """Store visits by local hour of entry, all 24 hours."""

    def weekday_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        """Store visits by weekday (0 = Monday) and hour of entry, the full 7 x 24 grid."""

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        """How many visitors made 1, 2, 3... store visits in the range."""

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame: ...

    def spend_per_customer(self, f: AnalyticsFilter, period: Period = "month") -> pd.DataFrame:
        """Linked spend per customer per week (its Monday) or month (``YYYY-MM``), local time."""

    def zone_density(self, f: AnalyticsFilter) -> pd.DataFrame:
        """Zone visits per camera and zone."""

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame: ...

    def customer_summary(self, customer_ids: list[str]) -> pd.DataFrame:
        """All-time store visits, last seen (UTC datetime, NaT if never) and spend of some customers."""


def analytics_for(services: Any) -> AnalyticsQueries:
    """The backend's analytics (``services.extras["analytics"]``) or the repository fallback."""
    found = services.extras.get("analytics")
    if found is not None:
        return found  # type: ignore[no-any-return]
    connection = getattr(services.repos, "connection", None)
    gap = int(getattr(services.settings, "visit_gap_seconds", DEFAULT_GAP_SECONDS))
    if services.settings.backend == "local" and callable(connection):
        # The local backend normally wires this itself (core/local/backend.py).
        from core.local.analytics import SqliteAnalytics

        chosen: AnalyticsQueries = SqliteAnalytics(connection, gap_seconds=gap)
    else:
        chosen = RepositoryAnalytics(services.repos, gap_seconds=gap)
    services.extras["analytics"] = chosen
    return chosen


def _frame(name: str, rows: Iterable[Any] = ()) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=COLUMNS[name])


@dataclass(frozen=True, slots=True)
class _Range:
    """One filter's data: zone visits, store visits and sales, with local times."""

    zones: pd.DataFrame  # ZONE_TOTAL_COLUMNS
    stays: pd.DataFrame  # customer_id, start, end, local (Timestamp, store tz)
    sales: pd.DataFrame  # SALE_COLUMNS + local


def store_visits(zone: pd.DataFrame, gap_seconds: int) -> pd.DataFrame:
    """Join zone visits into store visits (entry-to-exit stays), one row per stay.

    A zone visit starting at most ``gap_seconds`` after the latest ``end`` of the
    same customer's earlier zone visits continues that stay.

    >>> import pandas as pd
    >>> z = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "start": [0, 600, 9000, 50],
    ...                   "end": [300, 900, 9100, 60]})
    >>> store_visits(z, 1800)[["customer_id", "start", "end"]].values.tolist()
    [['a', 0, 900], ['a', 9000, 9100], ['b', 50, 60]]
    """
    import numpy as np
    import pandas as pd

    if zone.empty:
        return pd.DataFrame({"customer_id": [], "start": [], "end": []}).astype(
            {"customer_id": object, "start": "int64", "end": "int64"}
        )
    codes, uniques = pd.factorize(zone["customer_id"], sort=True)
    start = zone["start"].to_numpy(dtype="int64")
    end = np.maximum(zone["end"].to_numpy(dtype="int64"), start)
    order = np.lexsort((start, codes))
    c, s, e = codes[order], start[order], end[order]
    reach = pd.Series(e).groupby(c).cummax().to_numpy()
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (s[1:] > reach[:-1] + gap_seconds)
    stay = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    ends = pd.Series(e).groupby(stay).max().to_numpy()
    return pd.DataFrame(
        {"customer_id": np.asarray(uniques)[c[first]], "start": s[first], "end": ends}
    ).reset_index(drop=True)


def _local(seconds: pd.Series, tz: str) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(seconds, unit="s", utc=True).dt.tz_convert(tz)


class StoreAnalytics:
    """:class:`AnalyticsQueries` computed from a :class:`VisitData`.

    One filter's reads are memoised for ``memo_seconds`` so the dozen queries a
    page makes share them.
    """

    def __init__(self, data: VisitData, *, gap_seconds: int = DEFAULT_GAP_SECONDS) -> None:
        self.data = data
        self.gap_seconds = gap_seconds
        self.memo_seconds = 5.0
        self._memo_store: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._memo_lock = threading.Lock()

    def _memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._memo_lock:
            hit = self._memo_store.get(key)
            if hit is not None and _time.monotonic() - hit[0] < self.memo_seconds:
                return hit[1]
        value = compute()
        now = _time.monotonic()  # after computing: a slow read must not be stale on arrival
        with self._memo_lock:
            if len(self._memo_store) > 32:
                self._memo_store.clear()
            self._memo_store[key] = (now, value)
        return value

    def forget(self) -> None:
        """Drop memoised reads (tests and benchmarks)."""
        with self._memo_lock:
            self._memo_store.clear()

    def _range(self, f: AnalyticsFilter) -> _Range:
        def compute() -> _Range:
            lo, hi = f.epochs()
            # Read one gap earlier so a stay that began just before the range is
            # not cut in two; stays are then kept by their entry time.
            zone = self.data.zone_visits(lo - self.gap_seconds, hi, f.cameras)
            stays = store_visits(zone, self.gap_seconds)
            stays = stays[(stays["start"] >= lo) & (stays["start"] < hi)].reset_index(drop=True)
            stays = stays.assign(local=_local(stays["start"], f.tz))
            zones = self.data.zone_totals(lo, hi, f.cameras)
            sales = self.data.sales(lo, hi)
            sales = sales.assign(local=_local(sales["at"], f.tz))
            return _Range(zones, stays, sales)

        return self._memo(("range", f), compute)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ queries
    def cameras(self) -> list[str]:
        return self.data.cameras()

    def kpis(self, f: AnalyticsFilter) -> Kpis:
        r = self._range(f)
        lo, _hi = f.epochs()
        stays = r.stays
        per_visitor = stays.groupby("customer_id").size()
        visitors = list(per_visitor.index)
        first = self.data.first_visits(visitors) if visitors else {}
        first_in_range = stays.groupby("customer_id")["start"].min()
        returning = sum(
            1
            for cid, n in per_visitor.items()
            if n >= 2 or first.get(str(cid), int(first_in_range[cid])) < lo
        )
        new = sum(1 for cid in visitors if first.get(str(cid), int(first_in_range[cid])) >= lo)
        gaps = stays.sort_values(["customer_id", "start"]).groupby("customer_id")["start"].diff().dropna()
        linked = r.sales[r.sales["customer_id"].notna()]
        buyers = len(set(visitors) & set(linked["customer_id"]))
        currency = Counter(r.sales["currency"]).most_common(1)[0][0] if len(r.sales) else "EUR"
        return Kpis(
            visitors=len(visitors),
            store_visits=len(stays),
            zone_visits=int(r.zones["zone_visits"].sum()),
            returning_visitors=int(returning),
            new_customers=int(new),
            avg_days_between_visits=float(gaps.mean()) / 86400 if len(gaps) else None,
            spend_linked_cents=int(linked["amount_cents"].sum()),
            spend_unattributed_cents=int(r.sales.loc[r.sales["customer_id"].isna(), "amount_cents"].sum()),
            buyers=buyers,
            currency=str(currency),
        )

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        stays = self._range(f).stays
        days = [(f.start + timedelta(days=i)).isoformat() for i in range(f.days)]
        if stays.empty:
            return _frame("visits_per_day", [(d, 0, 0) for d in days])
        # Group on the local midnight and format only the few group labels
        # (strftime on every row is slow).
        day = stays["local"].dt.tz_localize(None).dt.normalize()
        out = (
            stays.assign(day=day)
            .groupby("day")
            .agg(store_visits=("customer_id", "size"), visitors=("customer_id", "nunique"))
        )
        out.index = out.index.strftime("%Y-%m-%d")
        out = out.reindex(pd.Index(days, name="day"), fill_value=0).reset_index()
        return out[COLUMNS["visits_per_day"]].astype({"store_visits": int, "visitors": int})

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        stays = self._range(f).stays
        counts = stays["local"].dt.hour.value_counts() if len(stays) else {}
        return _frame("visits_per_hour", [(h, int(counts.get(h, 0))) for h in range(24)])

    def weekday_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        stays = self._range(f).stays
        counts: dict[tuple[int, int], int] = {}
        if len(stays):
            grid = stays.groupby([stays["local"].dt.day_of_week, stays["local"].dt.hour]).size()
            counts = {(int(d), int(h)): int(n) for (d, h), n in grid.items()}
        return _frame("weekday_hour", [(d, h, counts.get((d, h), 0)) for d in range(7) for h in range(24)])

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        stays = self._range(f).stays
        counts = Counter(stays.groupby("customer_id").size().tolist())
        return _frame("visit_frequency", sorted(counts.items()))

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame:
        r = self._range(f)
        visits = r.stays.groupby("customer_id").size().to_dict()
        linked = r.sales[r.sales["customer_id"].notna()]
        spend = linked.groupby("customer_id")["amount_cents"].sum().to_dict()
        if by == "visits":
            keyed = [(int(v), int(spend.get(c, 0)), str(c)) for c, v in visits.items()]
            ranked = sorted(keyed, key=lambda t: (-t[0], -t[1], t[2]))[:limit]
            rows = [(c, v, s) for v, s, c in ranked]
        else:
            keyed = [(int(s), int(visits.get(c, 0)), str(c)) for c, s in spend.items() if s > 0]
            ranked = sorted(keyed, key=lambda t: (-t[0], -t[1], t[2]))[:limit]
            rows = [(c, v, s) for s, v, c in ranked]
        names = self.data.names([r[0] for r in rows]) if rows else {}
        return _frame("top_customers", [(c, names.get(c, ""), v, s) for c, v, s in rows])

    def spend_per_customer(self, f: AnalyticsFilter, period: Period = "month") -> pd.DataFrame:
        if period not in ("week", "month"):
            raise ValueError("period must be 'week' or 'month'")
        sales = self._range(f).sales
        linked = sales[sales["customer_id"].notna()]
        if linked.empty:
            return _frame("spend_per_customer")
        if period == "week":
            import pandas as pd

            day = linked["local"].dt.tz_localize(None).dt.normalize()
            label = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
        else:
            label = linked["local"].dt.strftime("%Y-%m")
        out = (
            linked.assign(period=label)
            .groupby(["period", "customer_id"])
            .agg(transactions=("amount_cents", "size"), spend_cents=("amount_cents", "sum"))
            .reset_index()
        )
        names = self.data.names(sorted(set(out["customer_id"])))
        out["name"] = out["customer_id"].map(lambda c: names.get(c, ""))
        out = out.sort_values(["period", "spend_cents", "customer_id"], ascending=[True, False, True])
        return out[COLUMNS["spend_per_customer"]].reset_index(drop=True)

    def zone_density(self, f: AnalyticsFilter) -> pd.DataFrame:
        zones = self._range(f).zones
        if zones.empty:
            return _frame("zone_density")
        out = zones.groupby(["camera_id", "zone"], as_index=False)["zone_visits"].sum()
        out = out.sort_values(["zone_visits", "zone"], ascending=[False, True])
        return out[COLUMNS["zone_density"]].astype({"zone_visits": int}).reset_index(drop=True)

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame:
        zones = self._range(f).zones
        if zones.empty:
            return _frame("dwell_per_zone")
        out = zones.groupby("zone", as_index=False).agg(
            zone_visits=("zone_visits", "sum"),
            dwell_sum=("dwell_sum", "sum"),
            max_dwell_s=("dwell_max", "max"),
        )
        out["avg_dwell_s"] = (out["dwell_sum"] / out["zone_visits"]).astype(float).round(1)
        out["max_dwell_s"] = out["max_dwell_s"].astype(float).round(1)
        return (
            out.sort_values("zone")[COLUMNS["dwell_per_zone"]]
            .astype({"zone_visits": int})
            .reset_index(drop=True)
        )

    def customer_summary(self, customer_ids: list[str]) -> pd.DataFrame:
        return _summary(self, customer_ids)


def _summary(analytics: StoreAnalytics, customer_ids: list[str]) -> pd.DataFrame:
    import pandas as pd

    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return _frame("customer_summary")
    zone = analytics.data.visits_of(ids)
    stays = store_visits(zone, analytics.gap_seconds)
    counts = stays.groupby("customer_id").size()
    last = zone.groupby("customer_id")["end"].max() if len(zone) else pd.Series(dtype="int64")
    spend = analytics.data.spend_of(ids)
    out = pd.DataFrame(
        {
            "customer_id": ids,
            "store_visits": [int(counts.get(c, 0)) for c in ids],
            "last_seen": pd.to_datetime([last.get(c) for c in ids], unit="s", utc=True),
            "spend_cents": [int(spend.get(c, 0)) for c in ids],
        }
    )
    return out[COLUMNS["customer_summary"]]


class RepositoryVisitData:
    """:class:`VisitData` through the repositories (the AWS backend: DynamoDB has no GROUP BY)."""

    def __init__(self, repos: Repositories, customer_limit: int = 100_000) -> None:
        self.repos = repos
        self.customer_limit = customer_limit

    def cameras(self) -> list[str]:
        # The last 90 days only: on DynamoDB an all-time read would scan every visit.
        now = int(datetime.now(UTC).timestamp())
        return sorted({v.camera_id for v in self._visits(now - 91 * 86400, now + 86400, ())})

    def _visits(self, lo: int, hi: int, cameras: tuple[str, ...]) -> list[Any]:
        return [
            v
            for v in self.repos.visits.between(
                datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
            )
            if not cameras or v.camera_id in cameras
        ]

    def zone_visits(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (v.customer_id, int(v.started_at.timestamp()), int(v.last_seen_at.timestamp()))
            for v in self._visits(lo, hi, cameras)
        ]
        return pd.DataFrame(rows, columns=ZONE_VISIT_COLUMNS).astype({"start": "int64", "end": "int64"})

    def zone_totals(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                v.camera_id,
                v.zone,
                max(0, int(v.last_seen_at.timestamp()) - int(v.started_at.timestamp())),
            )
            for v in self._visits(lo, hi, cameras)
        ]
        df = pd.DataFrame(rows, columns=["camera_id", "zone", "dwell"])
        if df.empty:
            return pd.DataFrame([], columns=ZONE_TOTAL_COLUMNS)
        out = df.groupby(["camera_id", "zone"], as_index=False).agg(
            zone_visits=("dwell", "size"), dwell_sum=("dwell", "sum"), dwell_max=("dwell", "max")
        )
        return out[ZONE_TOTAL_COLUMNS]

    def sales(self, lo: int, hi: int) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (t.customer_id, int(t.occurred_at.timestamp()), t.amount_cents, t.currency)
            for t in self.repos.transactions.between(
                datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
            )
        ]
        return pd.DataFrame(rows, columns=SALE_COLUMNS).astype({"at": "int64", "amount_cents": "int64"})

    def first_visits(self, customer_ids: list[str]) -> dict[str, int]:
        out = {}
        for cid in customer_ids:
            visits = self.repos.visits.by_customer(cid)
            if visits:
                out[cid] = int(min(v.started_at for v in visits).timestamp())
        return out

    def names(self, customer_ids: list[str]) -> dict[str, str]:
        from core.errors import NotFoundError

        out = {}
        for cid in customer_ids:
            try:
                out[cid] = self.repos.customers.get(cid).name
            except NotFoundError:
                continue
        return out

    def visits_of(self, customer_ids: list[str]) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (cid, int(v.started_at.timestamp()), int(v.last_seen_at.timestamp()))
            for cid in customer_ids
            for v in self.repos.visits.by_customer(cid)
        ]
        return pd.DataFrame(rows, columns=["customer_id", "start", "end"])

    def spend_of(self, customer_ids: list[str]) -> dict[str, int]:
        out = {}
        for cid in customer_ids:
            total = sum(t.amount_cents for t in self.repos.transactions.by_customer(cid))
            if total:
                out[cid] = total
        return out


class RepositoryAnalytics(StoreAnalytics):
    """Backend-neutral analytics over the repositories (used on the AWS backend)."""

    def __init__(self, repos: Repositories, *, gap_seconds: int = DEFAULT_GAP_SECONDS) -> None:
        super().__init__(RepositoryVisitData(repos), gap_seconds=gap_seconds)


# ------------------------------------------------------------------ floor plan


@dataclass(frozen=True, slots=True)
class ZoneShape:
    """A store zone as a polygon in floor-plan pixels (origin top-left)."""

    zone_id: str
    name: str
    polygon: tuple[tuple[float, float], ...]

    @property
    def centroid(self) -> tuple[float, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return (sum(xs) / len(xs), sum(ys) / len(ys))


@dataclass(frozen=True, slots=True)
class FloorPlan:
    """The store layout from ``config/store.toml``: image, zones and camera positions."""

    image: Path | None
    width: int
    height: int
    zones: tuple[ZoneShape, ...]
    cameras: dict[str, tuple[float, float]]


def load_floor_plan(path: Path | None = None) -> FloorPlan | None:
    """Read the store layout (``config/store.toml`` by default); ``None`` if there is none.

    >>> load_floor_plan(Path("/nonexistent.toml")) is None
    True
    """
    import tomllib

    from core.settings import PROJECT_DIR

    path = path or PROJECT_DIR / "config" / "store.toml"
    if not path.exists():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    image = data.get("floor_plan")
    image_path = (path.parent / image) if image else None
    zones = tuple(
        ZoneShape(
            str(z["id"]), str(z.get("name", z["id"])), tuple((float(x), float(y)) for x, y in z["polygon"])
        )
        for z in data.get("zones", [])
        if z.get("polygon")
    )
    cameras = {
        str(c["id"]): (float(c["position"][0]), float(c["position"][1]))
        for c in data.get("cameras", [])
        if c.get("position")
    }
    return FloorPlan(
        image=image_path if image_path and image_path.exists() else None,
        width=int(data.get("plan_width", 800)),
        height=int(data.get("plan_height", 500)),
        zones=zones,
        cameras=cameras,
    )
