"""SQL analytics (local) and the repository/pandas fallback agree on the same store."""

from __future__ import annotations

import itertools
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
    AnalyticsFilter(date(2026, 10, 5), date(2026, 11, 10), ("cam-aisle",), tz="America/New_York"),
]
METHODS = [
    ("visits_per_day", {}),
    ("visits_per_hour", {}),
    ("weekday_hour", {}),
    ("visit_frequency", {}),
    ("top_customers", {"by": "visits"}),
    ("top_customers", {"by": "spend"}),
    ("spend_per_customer", {"period": "week"}),
    ("spend_per_customer", {"period": "month"}),
    ("zone_density", {}),
    ("dwell_per_zone", {}),
]


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize(("method", "kwargs"), METHODS)
def test_sql_and_repository_reads_agree(store, f, method, kwargs):
    sql_impl, repo_impl = implementations(store)
    a = getattr(sql_impl, method)(f, **kwargs)
    b = getattr(repo_impl, method)(f, **kwargs)
    assert list(a.columns) == COLUMNS[method] == list(b.columns)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("f", FILTERS)
def test_kpis_agree(store, f):
    sql_impl, repo_impl = implementations(store)
    assert sql_impl.kpis(f) == repo_impl.kpis(f)


def test_figures_are_consistent(store):
    a = SqliteAnalytics(store.path)  # also works from a bare path
    f = AnalyticsFilter(date(2026, 10, 1), TODAY)
    k = a.kpis(f)
    per_day = a.visits_per_day(f)
    assert len(per_day) == f.days  # every day, zero-filled
    assert per_day["store_visits"].sum() == k.store_visits == a.weekday_hour(f)["store_visits"].sum()
    assert k.store_visits < k.zone_visits  # zone visits join into fewer stays
    freq = a.visit_frequency(f)
    assert (freq["store_visits"] * freq["visitors"]).sum() == k.store_visits
    assert freq["visitors"].sum() == k.visitors
    weeks = a.spend_per_customer(f, "week")
    assert all(date.fromisoformat(w).weekday() == 0 for w in weeks["period"])
    assert a.cameras() == sorted(CAMERAS)
    assert a.zone_density(f)["zone_visits"].sum() == k.zone_visits


def test_range_read_uses_the_covering_index(store):
    SqliteAnalytics(store.connection).ensure_indexes()
    plan = " ".join(
        str(tuple(r))
        for r in store.connection().execute(
            "EXPLAIN QUERY PLAN SELECT customer_id, camera_id, zone, unixepoch(started_at), "
            "unixepoch(last_seen_at) FROM visits INDEXED BY analytics_visits_range "
            "WHERE started_at >= '2026-10-01' AND started_at < '2026-11-01'"
        )
    )
    assert "USING COVERING INDEX" in plan


def test_filter_rejects_inverted_range_and_unknown_zone():
    with pytest.raises(ValueError):
        AnalyticsFilter(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(Exception, match="Mars"):
        AnalyticsFilter(date(2026, 1, 1), date(2026, 1, 2), tz="Mars/Olympus")


# ---------------------------------------------------------------- a hand-made store
#
# Store time zone Europe/Madrid (UTC+1 in November). The week Mon 9 - Sun 15
# November 2026; the previous period is Mon 2 - Sun 8.
#
#   Ana   3 Nov 10:00 UTC (previous week). 10 Nov 09:00-09:01 entrance, 09:10-09:20
#         aisles, 09:25-09:30 checkout: ONE store visit of three zone visits; buys
#         25.00 at 09:30. 12 Nov 17:00 entrance: a second store visit.
#   Ben   11 Nov 23:30 UTC = Thu 12 Nov 00:30 local: his first visit ever.
#   Cleo  15 Nov 23:30 UTC = Mon 16 Nov 00:30 local: after the range (UTC would count it);
#         buys at 23:40 UTC, also outside.
#   Dan   8 Nov 22:50-22:55 UTC, then 23:10 UTC (9 Nov 00:10 local) at the aisles: one
#         stay that began in the previous week; its second zone visit is in range.
#   Eve   13 Nov 10:00 and 11:00 UTC: an hour apart, more than the 30 min gap: two stays.
#   An anonymous sale of 10.00 on 12 Nov.
#
# This week: visitors Ana, Ben, Eve = 3; store visits 2 + 1 + 2 = 5; zone visits
# Ana 4 + Ben 1 + Dan 1 + Eve 2 = 8; returning Ana (earlier week) and Eve (an earlier
# visit this week) = 2; new (first visit ever this week) Ben and Eve = 2; days between
# visits: Ana 56 h, Eve 1 h -> 28.5 h = 1.1875 days; spend linked 2500, unattributed
# 1000; buyers Ana -> conversion 1/3.
# Previous week: Ana (3 Nov) and Dan (8 Nov): 2 visitors, 2 store visits, both new.

TZ = "Europe/Madrid"
WEEK = AnalyticsFilter(date(2026, 11, 9), date(2026, 11, 15), tz=TZ)


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def hand_made(tmp_path):
    repos = SqliteRepositories(tmp_path / "storelens.db")
    for cid, name in [("ana", "Ana"), ("ben", "Ben"), ("cleo", "Cleo"), ("dan", "Dan"), ("eve", "Eve")]:
        repos.customers.add(Customer(cid, name, consent=True, created_at=_utc(1, 0)))
    visits = [
        ("ana", "cam-entrance", "entrance", _utc(3, 10), _utc(3, 10, 5)),
        ("ana", "cam-entrance", "entrance", _utc(10, 9), _utc(10, 9, 1)),
        ("ana", "cam-aisles", "aisles", _utc(10, 9, 10), _utc(10, 9, 20)),
        ("ana", "cam-checkout", "checkout", _utc(10, 9, 25), _utc(10, 9, 30)),
        ("ana", "cam-entrance", "entrance", _utc(12, 17), _utc(12, 17, 2)),
        ("ben", "cam-entrance", "entrance", _utc(11, 23, 30), _utc(11, 23, 31)),
        ("cleo", "cam-entrance", "entrance", _utc(15, 23, 30), _utc(15, 23, 35)),
        ("dan", "cam-entrance", "entrance", _utc(8, 22, 50), _utc(8, 22, 55)),
        ("dan", "cam-aisles", "aisles", _utc(8, 23, 10), _utc(8, 23, 20)),
        ("eve", "cam-entrance", "entrance", _utc(13, 10), _utc(13, 10, 1)),
        ("eve", "cam-entrance", "entrance", _utc(13, 11), _utc(13, 11, 1)),
    ]
    for i, (cid, cam, zone, t0, t1) in enumerate(visits):
        repos.visits.add(Visit(f"vis_{i}", cid, "store-1", cam, zone, t0, t1))
    for tid, at, cents, cid in [
        ("t1", _utc(10, 9, 30), 2500, "ana"),
        ("t2", _utc(12, 12), 1000, None),
        ("t3", _utc(15, 23, 40), 4000, "cleo"),
    ]:
        repos.transactions.add(Transaction(tid, "store-1", at, cents, "EUR", None, cid))
    yield repos
    repos.close()


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite", "repositories"])
def test_kpis_of_a_hand_made_store(hand_made, which):
    a = implementations(hand_made)[which]
    k = a.kpis(WEEK)
    assert (k.visitors, k.store_visits, k.zone_visits) == (3, 5, 8)
    assert (k.returning_visitors, k.new_customers) == (2, 2)
    assert k.returning_rate == pytest.approx(2 / 3)
    assert k.avg_days_between_visits == pytest.approx(28.5 / 24)
    assert (k.spend_linked_cents, k.spend_unattributed_cents, k.spend_cents) == (2500, 1000, 3500)
    assert k.buyers == 1 and k.conversion == pytest.approx(1 / 3)
    before = a.kpis(WEEK.previous())
    assert (before.visitors, before.store_visits, before.new_customers, before.returning_visitors) == (
        2,
        2,
        2,
        0,
    )
    assert before.avg_days_between_visits is None


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite", "repositories"])
def test_charts_of_a_hand_made_store(hand_made, which):
    a = implementations(hand_made)[which]
    per_day = a.visits_per_day(WEEK).set_index("day")
    assert per_day.loc["2026-11-12"].tolist() == [2, 2]  # Ana 18:00 and Ben 00:30 local
    assert per_day.loc["2026-11-13"].tolist() == [2, 1]  # Eve twice
    assert per_day["store_visits"].sum() == 5 and len(per_day) == 7
    hours = a.visits_per_hour(WEEK).set_index("hour")["store_visits"]
    assert {h: n for h, n in hours.items() if n} == {0: 1, 10: 1, 11: 1, 12: 1, 18: 1}
    grid = a.weekday_hour(WEEK)
    assert len(grid) == 7 * 24
    cells = {(d, h): n for d, h, n in grid.itertuples(index=False) if n}
    assert cells == {(1, 10): 1, (3, 18): 1, (3, 0): 1, (4, 11): 1, (4, 12): 1}
    assert a.visit_frequency(WEEK).values.tolist() == [[1, 1], [2, 2]]
    top = a.top_customers(WEEK, by="visits")
    assert top[["name", "store_visits", "spend_cents"]].values.tolist() == [
        ["Ana", 2, 2500],
        ["Eve", 2, 0],
        ["Ben", 1, 0],
    ]
    assert a.top_customers(WEEK, by="spend")["name"].tolist() == ["Ana"]
    assert a.spend_per_customer(WEEK, "week").values.tolist() == [["2026-11-09", "ana", "Ana", 1, 2500]]
    density = a.zone_density(WEEK)
    assert density.values.tolist() == [
        ["cam-entrance", "entrance", 5],
        ["cam-aisles", "aisles", 2],
        ["cam-checkout", "checkout", 1],
    ]
    dwell = a.dwell_per_zone(WEEK).set_index("zone")
    assert dwell.loc["aisles", "avg_dwell_s"] == 600.0 and dwell.loc["checkout", "max_dwell_s"] == 300.0


def test_the_time_zone_moves_visits_between_days(hand_made):
    a = implementations(hand_made)[0]
    utc_week = AnalyticsFilter(WEEK.start, WEEK.end)  # UTC: Cleo's 23:30 counts, Ben's is the 11th
    k = a.kpis(utc_week)
    assert k.visitors == 4 and k.spend_linked_cents == 6500
    assert a.visits_per_day(utc_week).set_index("day").loc["2026-11-11", "store_visits"] == 1


def test_empty_range_gives_zero_filled_frames(hand_made):
    a = implementations(hand_made)[0]
    f = AnalyticsFilter(date(2025, 1, 1), date(2025, 1, 3), tz=TZ)
    k = a.kpis(f)
    assert (k.visitors, k.store_visits, k.returning_rate, k.conversion) == (0, 0, None, None)
    assert a.visits_per_day(f)["store_visits"].tolist() == [0, 0, 0]
    assert a.visits_per_hour(f)["store_visits"].sum() == 0 and len(a.weekday_hour(f)) == 168
    assert a.top_customers(f).empty and a.zone_density(f).empty and a.spend_per_customer(f).empty


# --- The vectorised store-visit join against the definition, on a randomised store.


def _reference_stays(rows, gap):
    """Store visits by the definition, one customer and one zone visit at a time."""
    out = []
    for cid in sorted({r[0] for r in rows}):
        reach = None
        for _, s, e in sorted((r for r in rows if r[0] == cid), key=lambda r: r[1]):
            e = max(e, s)
            if reach is None or s > reach + gap:
                out.append([cid, s, e])
                reach = e
            else:
                reach = max(reach, e)
                out[-1][2] = max(out[-1][2], e)
    return out


def test_store_visits_match_the_definition_on_random_visits():
    from core.analytics_engine import store_visits

    rng = random.Random(11)
    for trial in range(20):
        rows = []
        for _ in range(rng.randint(1, 400)):
            s = rng.randint(0, 6 * 3600)
            # Some long zone visits swallow later ones; some end before they start (clock skew).
            rows.append((f"c{rng.randint(0, 30):02d}", s, s + rng.choice([-60, 0, 30, 600, 1700, 5400])))
        frame = pd.DataFrame(rows, columns=["customer_id", "start", "end"])
        got = store_visits(frame, 1800)[["customer_id", "start", "end"]].values.tolist()
        assert got == _reference_stays(rows, 1800), trial


@pytest.fixture(scope="module")
def random_store(tmp_path_factory):
    """A few hundred zone visits in bursts around local midnight in Madrid, across the
    end of summer time (25 Oct 2026), with gaps near the 30 min join limit."""
    repos = SqliteRepositories(tmp_path_factory.mktemp("random") / "storelens.db")
    rng = random.Random(2026)
    ids = [f"cus_{i:02d}" for i in range(30)]
    for i, cid in enumerate(ids):
        repos.customers.add(
            Customer(cid, f"C{i:02d}", consent=True, created_at=datetime(2026, 10, 1, tzinfo=UTC))
        )
    n = 0
    for _ in range(120):
        cid = rng.choice(ids[: rng.randint(2, 30)])
        # Bursts near 22:00 UTC = local midnight (23:00 UTC after 25 Oct), 19..31 Oct.
        t = datetime(2026, 10, 19, 21, tzinfo=UTC) + timedelta(
            days=rng.randint(0, 12), minutes=rng.randint(0, 180)
        )
        for _ in range(rng.randint(1, 4)):
            cam = rng.choice(CAMERAS)
            end = t + timedelta(seconds=rng.choice([0, 20, 300, 1200, 3000]))
            repos.visits.add(Visit(f"vis_{n:04d}", cid, "store-1", cam, ZONES[cam], t, end))
            n += 1
            t = t + timedelta(seconds=rng.choice([60, 900, 1790, 1800, 1810, 2400]))
    for i in range(80):
        cid = rng.choice(ids + [None] * 4)
        at = datetime(2026, 10, 19, 20, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 13 * 24 * 60))
        repos.transactions.add(
            Transaction(f"txn_{i:03d}", "store-1", at, rng.randint(100, 9000), "EUR", None, cid)
        )
    yield repos
    repos.close()


RANDOM_FILTERS = [
    AnalyticsFilter(date(2026, 10, 22), date(2026, 10, 27), tz="Europe/Madrid"),
    AnalyticsFilter(
        date(2026, 10, 20), date(2026, 10, 24), ("cam-aisle", "cam-entrance"), tz="Europe/Madrid"
    ),
    AnalyticsFilter(date(2026, 10, 25), date(2026, 10, 31), tz="America/New_York"),
]


@pytest.mark.parametrize("f", RANDOM_FILTERS)
def test_fast_path_and_repositories_agree_on_a_random_store(random_store, f):
    sql_impl, repo_impl = implementations(random_store)
    assert sql_impl.kpis(f) == repo_impl.kpis(f)
    assert sql_impl.kpis(f.previous()) == repo_impl.kpis(f.previous())
    for method, kwargs in METHODS:
        a = getattr(sql_impl, method)(f, **kwargs)
        b = getattr(repo_impl, method)(f, **kwargs)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("f", RANDOM_FILTERS)
def test_kpis_of_a_random_store_match_the_definition(random_store, f):
    lo, hi = f.epochs()
    gap = 1800
    conn = random_store.connection()
    rows = conn.execute(
        "SELECT customer_id, camera_id, unixepoch(started_at), unixepoch(last_seen_at) FROM visits"
    ).fetchall()
    first_ever = {}
    for cid, _, s, _ in rows:
        first_ever[cid] = min(first_ever.get(cid, s), s)
    # Stays are joined from the zone visits of the range read one gap early, as documented.
    seen = [(c, s, e) for c, cam, s, e in rows if lo - gap <= s < hi and (not f.cameras or cam in f.cameras)]
    stays = [st for st in _reference_stays(seen, gap) if lo <= st[1] < hi]
    per = {}
    for cid, s, _ in stays:
        per.setdefault(cid, []).append(s)
    k = SqliteAnalytics(random_store.connection).kpis(f)
    assert (k.visitors, k.store_visits) == (len(per), len(stays))
    assert k.returning_visitors == sum(1 for c, ss in per.items() if len(ss) >= 2 or first_ever[c] < lo)
    assert k.new_customers == sum(1 for c in per if first_ever[c] >= lo)
    gaps = [b - a for ss in per.values() for a, b in itertools.pairwise(sorted(ss))]
    if gaps:
        assert k.avg_days_between_visits == pytest.approx(sum(gaps) / len(gaps) / 86400)
    else:
        assert k.avg_days_between_visits is None
    days = SqliteAnalytics(random_store.connection).visits_per_day(f)
    assert days["store_visits"].sum() == len(stays)
