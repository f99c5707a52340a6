"""The arithmetic of store analytics, shared by every backend (definitions in :mod:`core.analytics`).

:class:`StoreAnalytics` answers :class:`core.analytics_types.AnalyticsQueries`
from any :class:`core.analytics_types.VisitData`; :func:`store_visits` joins
zone visits into entry-to-exit stays.
"""

from __future__ import annotations

import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.analytics_types import (
    COLUMNS,
    DEFAULT_GAP_SECONDS,
    AnalyticsFilter,
    Kpis,
    Period,
    RankBy,
    SaleStats,
    StayStats,
    VisitData,
)

if TYPE_CHECKING:
    import pandas as pd


def _frame(name: str, rows: Iterable[Any] = ()) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=COLUMNS[name])


@dataclass(frozen=True, slots=True)
class _Range:
    """One filter's data: zone totals, store-visit statistics and sales statistics."""

    zones: pd.DataFrame  # ZONE_TOTAL_COLUMNS
    stays: StayStats
    sales: SaleStats


def sale_stats_of(sales: pd.DataFrame) -> SaleStats:
    """:class:`SaleStats` of a sales frame (:data:`core.analytics_types.SALE_COLUMNS`)."""
    linked = sales[sales["customer_id"].notna()]
    counts = sales["currency"].value_counts()
    currency = min(counts.index[counts == counts.max()]) if len(counts) else "EUR"
    per = linked.groupby("customer_id").agg(
        spend_cents=("amount_cents", "sum"), transactions=("amount_cents", "size")
    )
    return SaleStats(
        linked_cents=int(linked["amount_cents"].sum()),
        unattributed_cents=int(sales.loc[sales["customer_id"].isna(), "amount_cents"].sum()),
        currency=str(currency),
        per_customer=per.astype("int64"),
    )


def spend_per_period_of(sales: pd.DataFrame, tz: str, period: Period) -> pd.DataFrame:
    """Linked spend per local week (its Monday) or month (``YYYY-MM``) and customer."""
    import pandas as pd

    linked = sales[sales["customer_id"].notna()]
    columns = ["period", "customer_id", "transactions", "spend_cents"]
    if linked.empty:
        return pd.DataFrame([], columns=columns)
    local = _local(linked["at"], tz)
    if period == "week":
        day = local.dt.tz_localize(None).dt.normalize()
        label = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
    else:
        label = local.dt.strftime("%Y-%m")
    out = (
        linked.assign(period=label)
        .groupby(["period", "customer_id"])
        .agg(transactions=("amount_cents", "size"), spend_cents=("amount_cents", "sum"))
        .reset_index()
    )
    return out[columns]


def stay_stats(stays: pd.DataFrame, tz: str) -> StayStats:
    """:class:`StayStats` of some store visits (``customer_id``, ``start``; Unix seconds)."""
    import pandas as pd

    if stays.empty:
        return StayStats.empty()
    local = pd.to_datetime(stays["start"], unit="s", utc=True).dt.tz_convert(tz)
    per_customer = stays.groupby("customer_id")["start"].agg(["size", "min", "max"])
    per_customer.columns = ["store_visits", "first", "last"]
    # Group on the local midnight and format only the few group labels
    # (strftime on every row is slow).
    day = local.dt.tz_localize(None).dt.normalize()
    per_day = (
        stays.assign(day=day)
        .groupby("day")
        .agg(store_visits=("customer_id", "size"), visitors=("customer_id", "nunique"))
    )
    per_day.index = per_day.index.strftime("%Y-%m-%d")
    grid = stays.groupby([local.dt.day_of_week.rename("weekday"), local.dt.hour.rename("hour")]).size()
    return StayStats(
        per_customer=per_customer.astype("int64"),
        per_day=per_day.astype("int64"),
        grid=grid.rename("store_visits").astype("int64").reset_index(),
    )


def stay_stats_from_zone_visits(data: VisitData, lo: int, hi: int, f: AnalyticsFilter, gap: int) -> StayStats:
    """:class:`StayStats` of ``[lo, hi)`` joined in pandas from the zone visits (the reference way).

    Reads the zone visits starting from one gap before ``lo`` so a stay that
    began just before the range is not cut in two; stays are kept by entry time.
    """
    zone = data.zone_visits(lo - gap, hi, f.cameras)
    stays = store_visits(zone, gap)
    stays = stays[(stays["start"] >= lo) & (stays["start"] < hi)].reset_index(drop=True)
    return stay_stats(stays, f.tz)


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
    # Running maximum of ``end`` per customer in one vectorised pass: rows are
    # sorted by customer code, so lifting each customer's ends by code * span
    # keeps every customer above all earlier ones and a plain cumulative
    # maximum never carries over from one customer to the next.
    low = int(e.min())
    span = int(e.max()) - low + 1
    lift = c.astype("int64") * span
    reach = np.maximum.accumulate(lift + (e - low)) - lift + low
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (s[1:] > reach[:-1] + gap_seconds)
    first = np.flatnonzero(new)
    ends = np.maximum.reduceat(e, first)
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

    def version(self) -> int | None:
        """A number that changes whenever the data may have changed, or None when unknown.

        Callers cache results under it (the dashboard: until it changes); None
        means they must fall back to a time limit.
        """
        return None

    def forget(self) -> None:
        """Drop memoised reads (tests and benchmarks)."""
        with self._memo_lock:
            self._memo_store.clear()

    def _range(self, f: AnalyticsFilter) -> _Range:
        def compute() -> _Range:
            lo, hi = f.epochs()
            stays = self.data.stay_stats(f, self.gap_seconds)
            zones = self.data.zone_totals(lo, hi, f.cameras)
            return _Range(zones, stays, self.data.sale_stats(lo, hi))

        return self._memo(("range", f), compute)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ queries
    def cameras(self) -> list[str]:
        return self.data.cameras()

    def kpis(self, f: AnalyticsFilter) -> Kpis:
        r = self._range(f)
        lo, _hi = f.epochs()
        per = r.stays.per_customer
        visitors = list(per.index)
        first = self.data.first_visits(visitors) if visitors else {}
        # A visitor's first store visit ever: the stored one, else the first in range.
        first_ever = per.index.to_series().map(first).fillna(per["first"])
        earlier = (first_ever < lo).to_numpy()
        counts = per["store_visits"].to_numpy()
        returning = int(((counts >= 2) | earlier).sum())
        new = int((~earlier).sum())
        # The gaps between a customer's consecutive store visits add up to their
        # last minus their first: the mean gap needs only those and the counts.
        several = counts >= 2
        gap_count = int((counts[several] - 1).sum())
        gap_sum = int((per["last"].to_numpy()[several] - per["first"].to_numpy()[several]).sum())
        buyers = len(set(visitors) & set(r.sales.per_customer.index))
        return Kpis(
            visitors=len(visitors),
            store_visits=int(counts.sum()),
            zone_visits=int(r.zones["zone_visits"].sum()),
            returning_visitors=int(returning),
            new_customers=int(new),
            avg_days_between_visits=gap_sum / gap_count / 86400 if gap_count else None,
            spend_linked_cents=r.sales.linked_cents,
            spend_unattributed_cents=r.sales.unattributed_cents,
            buyers=buyers,
            currency=r.sales.currency,
        )

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        per_day = self._range(f).stays.per_day
        days = [(f.start + timedelta(days=i)).isoformat() for i in range(f.days)]
        if per_day.empty:
            return _frame("visits_per_day", [(d, 0, 0) for d in days])
        out = per_day.reindex(pd.Index(days, name="day"), fill_value=0).reset_index()
        return out[COLUMNS["visits_per_day"]].astype({"store_visits": int, "visitors": int})

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        grid = self._range(f).stays.grid
        counts = grid.groupby("hour")["store_visits"].sum().to_dict() if len(grid) else {}
        return _frame("visits_per_hour", [(h, int(counts.get(h, 0))) for h in range(24)])

    def weekday_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        grid = self._range(f).stays.grid
        counts = {
            (int(d), int(h)): int(n)
            for d, h, n in grid[["weekday", "hour", "store_visits"]].itertuples(index=False)
        }
        return _frame("weekday_hour", [(d, h, counts.get((d, h), 0)) for d in range(7) for h in range(24)])

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        per = self._range(f).stays.per_customer
        counts = Counter(per["store_visits"].tolist())
        return _frame("visit_frequency", sorted(counts.items()))

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame:
        r = self._range(f)
        visits = r.stays.per_customer["store_visits"].to_dict()
        spend = r.sales.per_customer["spend_cents"].to_dict()
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
        out = self.data.spend_per_period(f, period)
        if out.empty:
            return _frame("spend_per_customer")
        names = self.data.names(sorted(set(out["customer_id"])))
        out["name"] = out["customer_id"].map(names).fillna("").astype(str)
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
