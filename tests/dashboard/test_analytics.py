"""SQL analytics (local) and the repository/pandas fallback agree on the same store."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from core.analytics import COLUMNS, AnalyticsFilter, RepositoryAnalytics
from core.local.analytics import SqliteAnalytics
from core.local.sqlite import SqliteRepositories
from core.models import Customer, Transaction, Visit, new_id

TODAY = date(2026, 11, 18)  # a Wednesday
CAMERAS = ("cam-entrance", "cam-aisle", "cam-checkout")
ZONES = {"cam-entrance": "entrance", "cam-aisle": "produce", "cam-checkout": "checkout"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    repos = SqliteRepositories(tmp_path_factory.mktemp("analytics") / "storelens.db")
    rng = random.Random(7)
    customers = []
    for i in range(25):
        c = Customer(
            new_id("cus"),
            f"Customer {i:02d}",
            loyalty_id=f"L{i:04d}",
            consent=True,
            created_at=datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=i * 2),
        )
        repos.customers.add(c)
        customers.append(c)
    start = datetime(2026, 10, 1, 8, tzinfo=UTC)
    for _ in range(600):
        c = rng.choice(customers[: rng.randint(3, 25)])  # skewed: some customers visit more
        cam = rng.choice(CAMERAS)
        t0 = start + timedelta(minutes=rng.randint(0, 48 * 24 * 60))
        repos.visits.add(
            Visit(
                new_id("vis"),
                c.customer_id,
                "store-1",
                cam,
                ZONES[cam],
                t0,
                t0 + timedelta(seconds=rng.randint(0, 1800)),
            )
        )
    for _ in range(300):
        c = rng.choice(customers + [None] * 5)
        repos.transactions.add(
            Transaction(
                new_id("txn"),
                "store-1",
                start + timedelta(minutes=rng.randint(0, 48 * 24 * 60)),
                rng.randint(100, 20000),
                "EUR",
                c.loyalty_id if c else None,
                c.customer_id if c else None,
            )
        )
    yield repos
    repos.close()


def implementations(repos):
    return [SqliteAnalytics(repos.connection), RepositoryAnalytics(repos)]


FILTERS = [
    AnalyticsFilter(date(2026, 10, 1), TODAY),
    AnalyticsFilter(date(2026, 10, 20), date(2026, 11, 3), ("cam-aisle", "cam-checkout")),
    AnalyticsFilter(date(2025, 1, 1), date(2025, 1, 31)),  # empty
    AnalyticsFilter(date(2026, 10, 5), date(2026, 11, 10), ("cam-aisle",)),  # one camera: roll-up
]


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("visits_per_day", {}),
        ("visits_per_hour", {}),
        ("visit_frequency", {}),
        ("top_customers", {"by": "visits"}),
        ("top_customers", {"by": "spend"}),
        ("spend_per_customer", {"period": "week"}),
        ("spend_per_customer", {"period": "month"}),
        ("zone_density", {}),
        ("dwell_per_zone", {}),
    ],
)
def test_sql_and_pandas_agree(store, f, method, kwargs):
    sql_impl, pandas_impl = implementations(store)
    a = getattr(sql_impl, method)(f, **kwargs)
    b = getattr(pandas_impl, method)(f, **kwargs)
    name = method
    assert list(a.columns) == COLUMNS[name] == list(b.columns)
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, atol=0.11
    )


@pytest.mark.parametrize("f", FILTERS)
def test_kpis_agree(store, f):
    sql_impl, pandas_impl = implementations(store)
    a, b = sql_impl.kpis(f, today=TODAY), pandas_impl.kpis(f, today=TODAY)
    assert a == b


def test_figures_make_sense(store):
    sql_impl = SqliteAnalytics(store.path)  # also works from a bare path
    f = AnalyticsFilter(date(2026, 10, 1), TODAY)
    per_day = sql_impl.visits_per_day(f)
    assert per_day["visits"].sum() == sql_impl.kpis(f, TODAY).visits_in_range
    hours = sql_impl.visits_per_hour(f)
    assert list(hours["hour"]) == list(range(24))
    freq = sql_impl.visit_frequency(f)
    assert (freq["visits_per_customer"] * freq["customers"]).sum() == per_day["visits"].sum()
    weeks = sql_impl.spend_per_customer(f, "week")
    assert all(date.fromisoformat(w).weekday() == 0 for w in weeks["period"])
    assert sql_impl.cameras() == sorted(CAMERAS)
    later = sql_impl.kpis(AnalyticsFilter(date(2026, 11, 1), TODAY), TODAY)
    assert 0 < later.returning_visitors <= later.visitors_in_range


def test_queries_use_the_range_index(store):
    conn = store.connection()
    SqliteAnalytics(store.connection).ensure_indexes()
    plan = " ".join(
        str(tuple(r))
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT substr(started_at,1,10) d, COUNT(*) FROM visits "
            "WHERE started_at >= '2026-10-01' AND started_at < '2026-11-01' GROUP BY d"
        )
    )
    assert "USING COVERING INDEX" in plan


def test_filter_rejects_inverted_range():
    with pytest.raises(ValueError):
        AnalyticsFilter(date(2026, 2, 1), date(2026, 1, 1))


def test_rollup_follows_late_changes(tmp_path):
    """Closed days come from the roll-up; visits added or erased later are picked up."""
    repos = SqliteRepositories(tmp_path / "storelens.db")
    a = SqliteAnalytics(repos.connection)
    a.memo_seconds = 0.0
    day = date(2026, 1, 5)
    f = AnalyticsFilter(day, day)
    at = datetime(2026, 1, 5, 10, tzinfo=UTC)
    repos.visits.add(Visit("vis_1", "cus_a", "store-1", "cam-a", "entrance", at, at + timedelta(seconds=60)))
    assert a.zone_density(f)["visits"].tolist() == [1]
    rolled = repos.connection().execute("SELECT SUM(visits) FROM analytics_zone_hours").fetchone()[0]
    assert rolled == 1
    # A late approval turns an old sighting into a visit on that closed day.
    repos.visits.add(Visit("vis_2", "cus_b", "store-1", "cam-a", "entrance", at, at + timedelta(seconds=120)))
    assert a.zone_density(f)["visits"].tolist() == [2]
    assert a.dwell_per_zone(f)["avg_dwell_s"].tolist() == [90.0]
    # Erasure removes one: the roll-up follows.
    repos.visits.delete_by_customer("cus_a")
    assert a.zone_density(f)["visits"].tolist() == [1]
    assert a.visits_per_hour(f).set_index("hour").loc[10, "visits"] == 1
    assert a.visits_per_day(f)[["visits", "visitors"]].values.tolist() == [[1, 1]]
    assert a.visits_per_day(AnalyticsFilter(day, day, ("cam-a",)))["visits"].tolist() == [1]
    repos.close()
