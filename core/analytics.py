"""Store analytics: the queries behind the dashboard's Analytics page.

:class:`AnalyticsQueries` is the small interface the page talks to. The local
backend implements it with SQL aggregation over indexed SQLite tables
(:class:`core.local.analytics.SqliteAnalytics`); :class:`RepositoryAnalytics`
is a backend-neutral fallback that aggregates in pandas over the rows the
repositories return for the chosen date range (used on the AWS backend, where
DynamoDB has no GROUP BY). Both return the same frames, column for column, and
``tests/dashboard/test_analytics.py`` checks that they agree.

All days and hours are **UTC**. A filter's ``end`` day is inclusive.

>>> f = AnalyticsFilter(date(2026, 11, 1), date(2026, 11, 30), cameras=("cam-entrance",))
>>> f.bounds()
('2026-11-01T00:00:00.000000+00:00', '2026-12-01T00:00:00.000000+00:00')
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from core.ports import Repositories

from core.analytics_types import (
    COLUMNS,
    EPOCH,
    AnalyticsFilter,
    AnalyticsQueries,
    Kpis,
    Period,
    RankBy,
    day_text,
    week_start,
    zero_fill_hours,
)
from core.store_layout import FloorPlan, ZoneShape, load_floor_plan


def analytics_for(services: Any) -> AnalyticsQueries:
    """The backend's analytics (``services.extras["analytics"]``) or the repository fallback."""
    found = services.extras.get("analytics")
    if found is not None:
        return found
    connection = getattr(services.repos, "connection", None)
    if services.settings.backend == "local" and callable(connection):
        # The local backend normally wires this itself (core/local/backend.py);
        # never fall back to loading whole SQLite tables into pandas.
        from core.local.analytics import SqliteAnalytics

        chosen: AnalyticsQueries = SqliteAnalytics(connection)
    else:
        chosen = RepositoryAnalytics(services.repos)
    services.extras["analytics"] = chosen
    return chosen


def _frame(name: str, rows: list[Any] | None = None) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows or [], columns=COLUMNS[name])


class RepositoryAnalytics:
    """Backend-neutral analytics: fetch the range through the repositories, aggregate in pandas.

    Fine for the AWS backend's DynamoDB tables and small local stores; the
    local backend uses :class:`core.local.analytics.SqliteAnalytics` instead,
    which never loads whole tables.
    """

    def __init__(self, repos: Repositories, customer_limit: int = 100_000) -> None:
        self.repos = repos
        self.customer_limit = customer_limit

    # -- loading
    def _visits(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        lo, hi = f.datetimes()
        rows = [
            {
                "customer_id": v.customer_id,
                "camera_id": v.camera_id,
                "zone": v.zone,
                "started_at": v.started_at,
                "dwell": v.dwell_seconds,
            }
            for v in self.repos.visits.between(lo, hi)
            if not f.cameras or v.camera_id in f.cameras
        ]
        return pd.DataFrame(rows, columns=["customer_id", "camera_id", "zone", "started_at", "dwell"])

    def _transactions(self, f: AnalyticsFilter) -> pd.DataFrame:
        import pandas as pd

        lo, hi = f.datetimes()
        rows = [
            {
                "customer_id": t.customer_id,
                "occurred_at": t.occurred_at,
                "amount_cents": t.amount_cents,
                "currency": t.currency,
            }
            for t in self.repos.transactions.between(lo, hi)
        ]
        return pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount_cents", "currency"])

    def _names(self) -> dict[str, str]:
        return {c.customer_id: c.name for c in self.repos.customers.list(limit=self.customer_limit)}

    # -- queries
    def cameras(self) -> list[str]:
        # The last 90 days only: on DynamoDB an all-time read would scan every visit.
        f = AnalyticsFilter.last_days(91, datetime.now(UTC).date() + timedelta(days=1))
        return sorted(set(self._visits(f)["camera_id"]))

    def kpis(self, f: AnalyticsFilter, today: date | None = None) -> Kpis:
        today = today or datetime.now(UTC).date()
        week = AnalyticsFilter(week_start(today), today, f.cameras)
        this_week = self._visits(week)
        # astype(bool): on an empty frame map() yields an object Series, which
        # pandas would read as column labels instead of a mask.
        on_today = this_week["started_at"].map(lambda t: t.date() == today).astype(bool)
        visitors_today = this_week[on_today]
        visits = self._visits(f)
        visitors = set(visits["customer_id"])
        returning: set[str] = set()
        if f.start > EPOCH:
            before = self._visits(AnalyticsFilter(EPOCH, f.start - timedelta(days=1), f.cameras))
            returning = visitors & set(before["customer_id"])
        lo_dt, hi_dt = f.datetimes()
        new = sum(
            1 for c in self.repos.customers.list(limit=self.customer_limit) if lo_dt <= c.created_at < hi_dt
        )
        tx = self._transactions(f)
        currency = Counter(tx["currency"]).most_common(1)[0][0] if len(tx) else "EUR"
        return Kpis(
            visitors_today=int(visitors_today["customer_id"].nunique()),
            visitors_this_week=int(this_week["customer_id"].nunique()),
            visits_in_range=len(visits),
            visitors_in_range=len(visitors),
            returning_visitors=len(returning),
            new_customers=new,
            spend_cents=int(tx["amount_cents"].sum()) if len(tx) else 0,
            currency=currency,
        )

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame:
        v = self._visits(f)
        if v.empty:
            return _frame("visits_per_day")
        v["day"] = v["started_at"].map(lambda t: t.astimezone(UTC).date().isoformat())
        out = v.groupby("day").agg(visits=("customer_id", "size"), visitors=("customer_id", "nunique"))
        return out.reset_index()[COLUMNS["visits_per_day"]]

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        v = self._visits(f)
        if v.empty:
            return zero_fill_hours(_frame("visits_per_hour"))
        v["hour"] = v["started_at"].map(lambda t: t.astimezone(UTC).hour)
        return zero_fill_hours(v.groupby("hour").size().rename("visits").reset_index())

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        v = self._visits(f)
        if v.empty:
            return _frame("visit_frequency")
        counts = v.groupby("customer_id").size().value_counts().sort_index()
        out = counts.rename_axis("visits_per_customer").rename("customers").reset_index()
        return out[COLUMNS["visit_frequency"]]

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame:
        import pandas as pd

        v = self._visits(f)
        t = self._transactions(f).dropna(subset=["customer_id"])
        visits = v.groupby("customer_id").size().rename("visits")
        spend = t.groupby("customer_id")["amount_cents"].sum().rename("spend_cents")
        both = pd.concat([visits, spend], axis=1).fillna(0).astype(int)
        if both.empty:
            return _frame("top_customers")
        key = "visits" if by == "visits" else "spend_cents"
        other = "spend_cents" if by == "visits" else "visits"
        both = both.rename_axis("customer_id").reset_index()
        both = both[both[key] > 0].sort_values([key, other, "customer_id"], ascending=[False, False, True])
        names = self._names()
        both["name"] = both["customer_id"].map(lambda c: names.get(c, ""))
        return both.head(limit)[COLUMNS["top_customers"]].reset_index(drop=True)

    def spend_per_customer(self, f: AnalyticsFilter, period: Period = "month") -> pd.DataFrame:
        t = self._transactions(f).dropna(subset=["customer_id"])
        if t.empty:
            return _frame("spend_per_customer")
        if period == "week":
            t["period"] = t["occurred_at"].map(lambda x: week_start(x.astimezone(UTC).date()).isoformat())
        else:
            t["period"] = t["occurred_at"].map(lambda x: x.astimezone(UTC).strftime("%Y-%m"))
        out = (
            t.groupby(["period", "customer_id"])
            .agg(transactions=("amount_cents", "size"), spend_cents=("amount_cents", "sum"))
            .reset_index()
        )
        names = self._names()
        out["name"] = out["customer_id"].map(lambda c: names.get(c, ""))
        out = out.sort_values(["period", "spend_cents", "customer_id"], ascending=[True, False, True])
        return out[COLUMNS["spend_per_customer"]].reset_index(drop=True)

    def zone_density(self, f: AnalyticsFilter) -> pd.DataFrame:
        v = self._visits(f)
        if v.empty:
            return _frame("zone_density")
        out = v.groupby(["camera_id", "zone"]).agg(visits=("customer_id", "size")).reset_index()
        return out.sort_values(["visits", "zone"], ascending=[False, True])[
            COLUMNS["zone_density"]
        ].reset_index(drop=True)

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame:
        v = self._visits(f)
        if v.empty:
            return _frame("dwell_per_zone")
        out = (
            v.groupby("zone")
            .agg(visits=("dwell", "size"), avg_dwell_s=("dwell", "mean"), max_dwell_s=("dwell", "max"))
            .reset_index()
        )
        out["avg_dwell_s"] = out["avg_dwell_s"].round(1)
        out["max_dwell_s"] = out["max_dwell_s"].round(1)
        return out.sort_values("zone")[COLUMNS["dwell_per_zone"]].reset_index(drop=True)


__all__ = [
    "COLUMNS",
    "EPOCH",
    "AnalyticsFilter",
    "AnalyticsQueries",
    "FloorPlan",
    "Kpis",
    "Period",
    "RankBy",
    "RepositoryAnalytics",
    "ZoneShape",
    "analytics_for",
    "day_text",
    "load_floor_plan",
    "week_start",
    "zero_fill_hours",
]
