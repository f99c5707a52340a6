"""The types every analytics implementation shares: filters, KPIs, frame columns, the ports.

Kept apart from :mod:`core.analytics` (wiring and the repository reads) so the
SQLite implementation in :mod:`core.local.analytics` and the repository one
both import this module and neither imports the other. The definitions of
the figures are in :mod:`core.analytics`.

>>> f = AnalyticsFilter(date(2026, 11, 1), date(2026, 11, 30), tz="Europe/Madrid")
>>> f.datetimes()[0].isoformat()
'2026-10-31T23:00:00+00:00'
>>> f.previous().start, f.previous().end
(datetime.date(2026, 10, 2), datetime.date(2026, 10, 31))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd

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


@dataclass(frozen=True, slots=True)
class StayStats:
    """What every store-visit figure of one range is computed from (no single stays needed).

    * ``per_customer``: indexed by ``customer_id``; ``store_visits``, ``first``
      and ``last`` (Unix seconds of their first and last store visit in the range);
    * ``per_day``: indexed by local ``day`` (``YYYY-MM-DD``), only days with a
      store visit; ``store_visits``, ``visitors`` (distinct customers);
    * ``grid``: ``weekday`` (0 = Monday), ``hour``, ``store_visits`` (non-zero cells).
    """

    per_customer: pd.DataFrame
    per_day: pd.DataFrame
    grid: pd.DataFrame

    def __post_init__(self) -> None:
        _plain_ids(self.per_customer)

    @classmethod
    def empty(cls) -> StayStats:
        import pandas as pd

        return cls(
            per_customer=pd.DataFrame(
                {"store_visits": [], "first": [], "last": []}, index=pd.Index([], name="customer_id")
            ).astype("int64"),
            per_day=pd.DataFrame(
                {"store_visits": [], "visitors": []}, index=pd.Index([], name="day", dtype=object)
            ).astype("int64"),
            grid=pd.DataFrame({"weekday": [], "hour": [], "store_visits": []}).astype("int64"),
        )


@dataclass(frozen=True, slots=True)
class SaleStats:
    """The sales of one range, summed: linked and unattributed cents, the most used currency
    (ties: the alphabetically first), and ``per_customer`` (indexed by ``customer_id``:
    ``spend_cents``, ``transactions``) for the linked ones."""

    linked_cents: int
    unattributed_cents: int
    currency: str
    per_customer: pd.DataFrame

    def __post_init__(self) -> None:
        _plain_ids(self.per_customer)


def _plain_ids(frame: pd.DataFrame) -> None:
    # Customer ids as plain Python strings: the KPIs iterate them (sets, dicts),
    # and iterating an Arrow-backed string index costs a call per element.
    if frame.index.dtype != object:
        frame.index = frame.index.astype(object)


@runtime_checkable
class VisitData(Protocol):
    """The reads analytics needs from a backend; frames have plain columns, times in Unix seconds."""

    def cameras(self) -> list[str]:
        """Camera ids that have recorded visits, sorted."""

    def zone_visits(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        """Zone visits starting in ``[lo, hi)``, who and when only (:data:`ZONE_VISIT_COLUMNS`)."""

    def stay_stats(self, f: AnalyticsFilter, gap_seconds: int) -> StayStats:
        """Statistics of the store visits that began in ``f`` (its dates, cameras and time zone).

        Store visits are joined (``gap_seconds``) from the zone visits of the
        range and of one gap before it, of ``f.cameras`` only when given
        (:func:`core.analytics_engine.stay_stats_from_zone_visits` is the
        reference; a backend may answer from tables it keeps up to date).
        """

    def zone_totals(self, lo: int, hi: int, cameras: tuple[str, ...]) -> pd.DataFrame:
        """Zone visits, dwell sum and longest dwell (s) per camera and zone (:data:`ZONE_TOTAL_COLUMNS`)."""

    def sales(self, lo: int, hi: int) -> pd.DataFrame:
        """Transactions in ``[lo, hi)`` (:data:`SALE_COLUMNS`; ``customer_id`` None when unlinked)."""

    def sale_stats(self, lo: int, hi: int) -> SaleStats:
        """The sales in ``[lo, hi)`` summed (:func:`core.analytics_engine.sale_stats_of` is the reference)."""

    def spend_per_period(self, f: AnalyticsFilter, period: Period) -> pd.DataFrame:
        """Linked sales of ``f`` per local week (its Monday) or month and customer:
        ``period, customer_id, transactions, spend_cents`` (reference:
        :func:`core.analytics_engine.spend_per_period_of`)."""

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
