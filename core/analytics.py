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

:class:`core.analytics_engine.StoreAnalytics` computes everything from a
:class:`core.analytics_types.VisitData`, which answers with summaries of a
range (store-visit and sale statistics, zone totals, first visits); the local
backend answers from tables SQLite keeps up to date
(:class:`core.local.analytics.SqliteAnalytics`, :mod:`core.local.store_visits`),
any other backend computes them in pandas from the repositories
(:class:`RepositoryAnalytics`, here, with the reference functions of
:mod:`core.analytics_engine`). The types live in
:mod:`core.analytics_types` and are re-exported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.analytics_engine import (
    StoreAnalytics,
    sale_stats_of,
    spend_per_period_of,
    stay_stats_from_zone_visits,
    store_visits,
)
from core.analytics_types import (
    COLUMNS,
    DEFAULT_GAP_SECONDS,
    SALE_COLUMNS,
    WEEKDAYS,
    ZONE_TOTAL_COLUMNS,
    ZONE_VISIT_COLUMNS,
    AnalyticsFilter,
    AnalyticsQueries,
    Kpis,
    Period,
    RankBy,
    SaleStats,
    StayStats,
    VisitData,
    day_text,
    week_start,
)
from core.store_layout import FloorPlan, ZoneShape, load_floor_plan

if TYPE_CHECKING:
    import pandas as pd

    from core.ports import Repositories


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

    def stay_stats(self, f: AnalyticsFilter, gap_seconds: int) -> StayStats:
        lo, hi = f.epochs()
        return stay_stats_from_zone_visits(self, lo, hi, f, gap_seconds)

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

    def sale_stats(self, lo: int, hi: int) -> SaleStats:
        return sale_stats_of(self.sales(lo, hi))

    def spend_per_period(self, f: AnalyticsFilter, period: Period) -> pd.DataFrame:
        lo, hi = f.epochs()
        return spend_per_period_of(self.sales(lo, hi), f.tz, period)

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


__all__ = [
    "COLUMNS",
    "DEFAULT_GAP_SECONDS",
    "WEEKDAYS",
    "AnalyticsFilter",
    "AnalyticsQueries",
    "FloorPlan",
    "Kpis",
    "Period",
    "RankBy",
    "RepositoryAnalytics",
    "RepositoryVisitData",
    "SaleStats",
    "StayStats",
    "StoreAnalytics",
    "VisitData",
    "ZoneShape",
    "day_text",
    "load_floor_plan",
    "store_visits",
    "week_start",
]
