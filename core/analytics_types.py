"""The types every analytics implementation shares: filters, KPIs, frame columns, the query port.

Kept apart from :mod:`core.analytics` (the pandas fallback) so the SQLite
implementation in :mod:`core.local.analytics` and the fallback both import
this module and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

Period = Literal["week", "month"]
EPOCH = date(1970, 1, 1)
RankBy = Literal["visits", "spend"]

#: Column names of every frame, so both implementations and the page agree.
COLUMNS: dict[str, list[str]] = {
    "visits_per_day": ["day", "visits", "visitors"],
    "visits_per_hour": ["hour", "visits"],
    "visit_frequency": ["visits_per_customer", "customers"],
    "top_customers": ["customer_id", "name", "visits", "spend_cents"],
    "spend_per_customer": ["period", "customer_id", "name", "transactions", "spend_cents"],
    "zone_density": ["camera_id", "zone", "visits"],
    "dwell_per_zone": ["zone", "visits", "avg_dwell_s", "max_dwell_s"],
}


@dataclass(frozen=True, slots=True)
class AnalyticsFilter:
    """A UTC date range (both ends inclusive) and, optionally, some cameras."""

    start: date
    end: date
    cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the end date is before the start date")

    def bounds(self) -> tuple[str, str]:
        """``[lo, hi)`` in the stores' fixed-width UTC text form."""
        return day_text(self.start), day_text(self.end + timedelta(days=1))

    def datetimes(self) -> tuple[datetime, datetime]:
        """``[lo, hi)`` as aware UTC datetimes."""
        lo = datetime.combine(self.start, time(), tzinfo=UTC)
        return lo, datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    @classmethod
    def last_days(
        cls, days: int, today: date | None = None, cameras: tuple[str, ...] = ()
    ) -> AnalyticsFilter:
        today = today or datetime.now(UTC).date()
        return cls(today - timedelta(days=days - 1), today, cameras)


def day_text(day: date) -> str:
    """Midnight UTC of ``day`` in the fixed-width text the SQLite store uses."""
    return f"{day.isoformat()}T00:00:00.000000+00:00"


def week_start(day: date) -> date:
    """The Monday on or before ``day`` (weeks are labelled by their Monday)."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Kpis:
    """Headline numbers; ``returning_rate`` is None when nobody visited in range."""

    visitors_today: int
    visitors_this_week: int
    visits_in_range: int
    visitors_in_range: int
    returning_visitors: int
    new_customers: int
    spend_cents: int
    currency: str

    @property
    def returning_rate(self) -> float | None:
        """Share of the range's visitors who had visited before the range began."""
        return self.returning_visitors / self.visitors_in_range if self.visitors_in_range else None


@runtime_checkable
class AnalyticsQueries(Protocol):
    """Aggregations for the Analytics page; every frame has the columns in :data:`COLUMNS`."""

    def cameras(self) -> list[str]:
        """Camera ids that have recorded visits, sorted."""

    def kpis(self, f: AnalyticsFilter, today: date | None = None) -> Kpis:
        """Headline numbers for the range (and for ``today`` / its week, UTC)."""

    def visits_per_day(self, f: AnalyticsFilter) -> pd.DataFrame: ...

    def visits_per_hour(self, f: AnalyticsFilter) -> pd.DataFrame:
        """All 24 UTC hours, zero-filled."""

    def visit_frequency(self, f: AnalyticsFilter) -> pd.DataFrame:
        """How many customers made 1, 2, 3... visits in the range."""

    def top_customers(self, f: AnalyticsFilter, by: RankBy = "visits", limit: int = 10) -> pd.DataFrame: ...

    def spend_per_customer(self, f: AnalyticsFilter, period: Period = "month") -> pd.DataFrame:
        """Spend of each linked customer per week (Monday, ISO date) or month (``YYYY-MM``)."""

    def zone_density(self, f: AnalyticsFilter) -> pd.DataFrame: ...

    def dwell_per_zone(self, f: AnalyticsFilter) -> pd.DataFrame: ...


def zero_fill_hours(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    full = pd.DataFrame({"hour": range(24)})
    out = full.merge(df, on="hour", how="left").fillna({"visits": 0})
    out["visits"] = out["visits"].astype(int)
    return out[COLUMNS["visits_per_hour"]]
