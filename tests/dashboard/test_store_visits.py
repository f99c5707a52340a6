"""Materialised store visits (core.local.store_visits): the triggers keep them equal to a
recomputation from the raw zone visits, whoever writes, and erasure leaves nothing."""

from __future__ import annotations

import random
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from core.analytics import AnalyticsFilter, RepositoryAnalytics
from core.local import store_visits
from core.local.analytics import SqliteAnalytics
from core.local.sqlite import SqliteRepositories, to_db_time
from core.models import Customer, Transaction, Visit
from tests.dashboard.test_analytics import METHODS

GAP = 1800
TZ = "Europe/Madrid"
T0 = datetime(2026, 10, 22, tzinfo=UTC)  # summer time ends on Sunday 25 October


def reference(conn: sqlite3.Connection, tz: str) -> dict[str, list[tuple[object, ...]]]:
    """Every derived table recomputed in Python, one zone visit at a time, from ``visits``."""
    rows = conn.execute(
        "SELECT customer_id, camera_id, zone, unixepoch(started_at), unixepoch(last_seen_at) FROM visits"
    ).fetchall()
    stays: list[list[int | str]] = []
    for cid in sorted({r[0] for r in rows}):
        reach = None
        for _, _, _, s, last in sorted((r for r in rows if r[0] == cid), key=lambda r: (r[3], r[4])):
            e = max(last, s)
            if reach is None or s > reach + GAP:
                stays.append([cid, s, e, last, 1])
                reach = e
            else:
                reach = max(reach, e)
                stays[-1][2] = max(int(stays[-1][2]), e)
                stays[-1][3] = max(int(stays[-1][3]), last)
                stays[-1][4] = int(stays[-1][4]) + 1
    zone = ZoneInfo(tz)
    days: dict[int, list[object]] = {}
    hours: dict[int, int] = {}
    for cid, s, *_ in stays:
        local = datetime.fromtimestamp(int(s), zone)
        hour = int((local.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) // 3600
        hours[hour] = hours.get(hour, 0) + 1
        entry = days.setdefault(hour // 24, [0, set()])
        entry[0] = int(entry[0]) + 1  # type: ignore[call-overload]
        entry[1].add(cid)  # type: ignore[attr-defined]
    quarters: dict[tuple[int, str, str], list[int]] = {}
    for _, cam, zone_name, s, last in rows:
        q = quarters.setdefault((s // 900, cam, zone_name), [0, 0, 0])
        d = max(0, last - s)
        q[0] += 1
        q[1] += d
        q[2] = max(q[2], d)

    def week_month(t: int) -> tuple[int, int]:
        local = datetime.fromtimestamp(t, zone)
        day = (local.date() - date(1970, 1, 1)).days
        return (day + 3) // 7, local.year * 12 + local.month - 1

    periods: dict[str, dict[tuple[int, str], list[int]]] = {"customer_weeks": {}, "customer_months": {}}
    for cid, s, *_ in stays:
        for table, p in zip(periods, week_month(int(s)), strict=True):
            e = periods[table].setdefault((p, str(cid)), [0, int(s), int(s)])
            e[0] += 1
            e[1], e[2] = min(e[1], int(s)), max(e[2], int(s))
    sales: dict[str, dict[tuple[int, str, str], list[int]]] = {"sale_weeks": {}, "sale_months": {}}
    for at, cid, cents, currency in conn.execute(
        "SELECT unixepoch(occurred_at), customer_id, amount_cents, currency FROM transactions"
    ):
        for table, p in zip(sales, week_month(int(at)), strict=True):
            e = sales[table].setdefault((p, cid or "", currency), [0, 0])
            e[0] += 1
            e[1] += cents
    return {
        **{t: sorted((*k, *v) for k, v in rows.items()) for t, rows in periods.items()},
        **{t: sorted((*k, *v) for k, v in rows.items()) for t, rows in sales.items()},
        "store_visits": sorted(tuple(x) for x in stays),
        "stay_days": sorted((d, n, len(v)) for d, (n, v) in days.items()),  # type: ignore[arg-type]
        "stay_hours": sorted(hours.items()),
        "zone_quarters": sorted((*k, *v) for k, v in quarters.items()),
    }


def materialised(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    def q(sql: str) -> list[tuple[object, ...]]:
        return sorted(tuple(r) for r in conn.execute(sql))

    return {
        "store_visits": q(
            "SELECT customer_id, started_at, ended_at, last_seen_at, zone_visits FROM store_visits"
        ),
        "stay_days": q("SELECT * FROM stay_days WHERE stays > 0"),
        "stay_hours": q("SELECT * FROM stay_hours WHERE stays > 0"),
        "zone_quarters": q("SELECT * FROM zone_quarters"),
        **{
            t: q(f"SELECT * FROM {t}")
            for t in ("customer_weeks", "customer_months", "sale_weeks", "sale_months")
        },
    }


def _random_visit(rng: random.Random, n: int, customers: int = 6) -> Visit:
    cam = rng.choice(["cam-a", "cam-b"])
    # Mostly within 5 days (many joins), some up to 12 (across a month's end).
    days = rng.choice([5, 5, 5, 12])
    s = T0 + timedelta(seconds=rng.randint(0, days * 86400), microseconds=rng.choice([0, 500_000]))
    # Some end before they start (clock skew), some are long and swallow later ones.
    end = s + timedelta(seconds=rng.choice([-60, 0, 30, 600, 1700, 1800, 1801, 5400]))
    return Visit(f"vis_{n:05d}", f"cus_{rng.randint(0, customers - 1)}", "store-1", cam, cam[-1], s, end)


def test_materialised_tables_equal_a_recomputation_after_random_writes(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "storelens.db")
    conn = repos.connection()
    assert store_visits.ensure(conn, GAP, TZ)
    rng = random.Random(20261025)
    ids: list[str] = []
    for n in range(800):
        op = rng.random()
        if n % 7 == 0:  # sales: added, moved to another customer or unattributed, deleted
            at = T0 + timedelta(seconds=rng.randint(0, 40 * 86400))
            cid = rng.choice([f"cus_{rng.randint(0, 5)}", None])
            repos.transactions.add(
                Transaction(f"txn_{n}", "store-1", at, rng.randint(1, 999), "EUR", None, cid)
            )
            if n % 3 == 0:
                conn.execute(
                    "UPDATE transactions SET customer_id = ? WHERE transaction_id = "
                    "(SELECT transaction_id FROM transactions ORDER BY random() LIMIT 1)",
                    (rng.choice(["cus_1", None]),),
                )
            if n % 5 == 0:
                conn.execute(
                    "DELETE FROM transactions WHERE transaction_id = "
                    "(SELECT transaction_id FROM transactions ORDER BY random() LIMIT 1)"
                )
        if op < 0.5 or not ids:
            v = _random_visit(rng, n)
            repos.visits.add(v)
            ids.append(v.visit_id)
        elif op < 0.75:  # the ingest's extension of the current zone visit
            repos.visits.extend(rng.choice(ids), T0 + timedelta(seconds=rng.randint(0, 5 * 86400)))
        elif op < 0.85:
            conn.execute("DELETE FROM visits WHERE visit_id = ?", (ids.pop(rng.randrange(len(ids))),))
        elif op < 0.9:  # a merge
            repos.visits.reassign(f"cus_{rng.randint(0, 5)}", f"cus_{rng.randint(0, 5)}")
        else:  # any other change: start, end backwards, camera
            v = _random_visit(rng, n)
            conn.execute(
                "UPDATE visits SET started_at = ?, last_seen_at = ?, camera_id = ?, zone = ? "
                "WHERE visit_id = ?",
                (to_db_time(v.started_at), to_db_time(v.last_seen_at), v.camera_id, v.zone, rng.choice(ids)),
            )
        if n % 200 == 199:
            assert materialised(conn) == reference(conn, TZ), n
    with repos.atomic():  # many changes in one transaction, as an erasure makes them
        repos.visits.delete_by_customer("cus_1")
        repos.visits.reassign("cus_2", "cus_3")
    assert materialised(conn) == reference(conn, TZ)
    # Re-timing to another zone recomputes the per-day and per-hour roll-ups.
    assert store_visits.ensure(conn, GAP, "America/New_York")
    assert materialised(conn) == reference(conn, "America/New_York")
    repos.close()


def _writer(path: str, seed: int, ops: int) -> int:
    """One ingest-like process: new zone visits and extensions, each in its own transaction."""
    from types import SimpleNamespace

    from core.sightings import record_sighting
    from tests.conftest import make_settings

    repos = SqliteRepositories(path)
    settings = make_settings(Path(path).parent, visit_gap_seconds=GAP)
    rng = random.Random(seed)
    for n in range(ops):
        v = _random_visit(rng, seed * 10_000 + n, customers=4)
        seen = SimpleNamespace(
            captured_at=v.started_at,
            camera_id=v.camera_id,
            zone=v.zone,
            event_id=v.visit_id,
            store_id="store-1",
        )
        with repos.atomic():
            record_sighting(repos, settings, v.customer_id, seen, 0.9)  # type: ignore[arg-type]
    repos.close()
    return ops


def test_concurrent_writers_keep_store_visits_consistent(tmp_path: Path) -> None:
    path = tmp_path / "storelens.db"
    repos = SqliteRepositories(path)
    assert store_visits.ensure(repos.connection(), GAP, TZ)
    with ProcessPoolExecutor(3, mp_context=get_context("spawn")) as pool:
        done = list(pool.map(_writer, [str(path)] * 3, range(1, 4), [40] * 3))
    assert sum(done) == 120
    conn = repos.connection()
    assert conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0] > 0
    assert materialised(conn) == reference(conn, TZ)
    repos.close()


def test_erasure_leaves_no_derived_rows(tmp_path: Path) -> None:
    from core.bootstrap import build_services
    from tests.conftest import make_settings

    svc = build_services(make_settings(tmp_path / "data"))
    try:
        rng = random.Random(3)
        for cid in ("cus_0", "cus_1"):
            svc.repos.customers.add(Customer(cid, cid.title(), consent=True))
        for n in range(80):
            svc.repos.visits.add(_random_visit(rng, n, customers=2))
        for n, cid in enumerate(["cus_0", "cus_1", None, "cus_0"]):
            at = T0 + timedelta(days=3 * n)
            svc.repos.transactions.add(Transaction(f"txn_{n}", "store-1", at, 100 + n, "EUR", None, cid))
        conn = svc.repos.connection()  # type: ignore[attr-defined]
        assert conn.execute("SELECT COUNT(*) FROM store_visits WHERE customer_id = 'cus_0'").fetchone()[0]
        svc.privacy.erase("cus_0", actor="test")
        assert (
            conn.execute("SELECT COUNT(*) FROM store_visits WHERE customer_id = 'cus_0'").fetchone()[0] == 0
        )
        summary = svc.analytics.customer_summary(["cus_0", "cus_1"]).set_index("customer_id")
        assert summary.at["cus_0", "store_visits"] == 0 and pd.isna(summary.at["cus_0", "last_seen"])
        # The roll-ups carry no ids and now count only what is left.
        assert materialised(conn) == reference(conn, svc.settings.timezone)
        columns = {
            r[1]
            for t in ("stay_days", "stay_hours", "zone_quarters")
            for r in conn.execute(f"PRAGMA table_info({t})")
        }
        assert not any("customer" in c for c in columns)
        for t in ("customer_weeks", "customer_months", "sale_weeks", "sale_months"):
            assert not conn.execute(f"SELECT COUNT(*) FROM {t} WHERE customer_id = 'cus_0'").fetchone()[0], t
    finally:
        svc.close()


def test_an_older_data_dir_is_backfilled_once(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "storelens.db")
    conn = repos.connection()
    rng = random.Random(5)
    for n in range(300):
        repos.visits.add(_random_visit(rng, n))
    # What a data dir from before store visits looks like.
    for name in ("store_visits_insert", "store_visits_extend", "store_visits_change", "store_visits_delete"):
        conn.execute(f"DROP TRIGGER {name}")
    for table in ("store_visits", "stay_days", "stay_hours", "zone_quarters", "store_tz"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM meta WHERE key LIKE 'store_visit%'")
    store_visits.migrate(conn)
    assert materialised(conn) == reference(conn, "UTC")
    before = conn.execute("SELECT stay_id FROM store_visits ORDER BY stay_id").fetchall()
    store_visits.migrate(conn)  # a no-op now
    assert conn.execute("SELECT stay_id FROM store_visits ORDER BY stay_id").fetchall() == before
    repos.visits.add(_random_visit(rng, 999))  # and the triggers work
    assert materialised(conn) == reference(conn, "UTC")
    repos.close()


@pytest.fixture(scope="module")
def dst_store(tmp_path_factory: pytest.TempPathFactory) -> SqliteRepositories:
    """Chains of zone visits 29-31 min apart around local midnight across the end of summer
    time, and stays long enough to run from before a range into it."""
    repos = SqliteRepositories(tmp_path_factory.mktemp("dst") / "storelens.db")
    rng = random.Random(2510)
    ids = [f"cus_{i:02d}" for i in range(12)]
    for cid in ids:
        repos.customers.add(Customer(cid, cid.upper(), consent=True))
    n = 0
    for _ in range(90):
        cid = rng.choice(ids[: rng.randint(2, 12)])
        t = datetime(2026, 10, 20, 20, tzinfo=UTC) + timedelta(
            days=rng.randint(0, 10), minutes=rng.randint(0, 300)
        )
        for _ in range(rng.randint(1, 12)):
            cam = rng.choice(["cam-a", "cam-b"])
            end = t + timedelta(seconds=rng.choice([0, 300, 1500, 3600]))
            repos.visits.add(Visit(f"vis_{n:04d}", cid, "store-1", cam, cam[-1], t, end))
            n += 1
            t += timedelta(seconds=rng.choice([600, 1740, 1800, 1860, 2400]))
    for i in range(60):
        at = datetime(2026, 10, 20, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 12 * 24 * 60))
        cid = rng.choice([*ids, None])
        repos.transactions.add(
            Transaction(f"txn_{i}", "store-1", at, rng.randint(100, 5000), "EUR", None, cid)
        )
    return repos


@pytest.mark.parametrize("tz", [TZ, "America/New_York", "Asia/Kolkata"])
def test_roll_ups_give_the_reference_figures(dst_store: SqliteRepositories, tz: str) -> None:
    fast = SqliteAnalytics(dst_store.connection, timezone=tz)
    slow = RepositoryAnalytics(dst_store)
    for f in [
        AnalyticsFilter(date(2026, 10, 22), date(2026, 10, 27), tz=tz),
        AnalyticsFilter(date(2026, 10, 25), date(2026, 10, 25), tz=tz),
        AnalyticsFilter(date(2026, 10, 21), date(2026, 10, 31), ("cam-a", "cam-b"), tz=tz),  # = all
        AnalyticsFilter(date(2026, 10, 23), date(2026, 10, 29), ("cam-b",), tz=tz),
        # Whole weeks and a whole month, answered from the per-period roll-ups.
        AnalyticsFilter(date(2026, 10, 12), date(2026, 11, 8), tz=tz),
        AnalyticsFilter(date(2026, 9, 20), date(2026, 11, 30), tz=tz),
        AnalyticsFilter(date(2026, 10, 1), date(2026, 10, 31), tz=tz),
    ]:
        for g in (f, f.previous()):
            assert fast.kpis(g) == slow.kpis(g), g
        for method, kwargs in METHODS:
            a = getattr(fast, method)(f, **kwargs).reset_index(drop=True)
            b = getattr(slow, method)(f, **kwargs).reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{method} {f}")
    ids = [f"cus_{i:02d}" for i in range(12)]
    pd.testing.assert_frame_equal(fast.customer_summary(ids), slow.customer_summary(ids), check_dtype=False)


def test_version_changes_when_the_store_does_and_only_then(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "storelens.db")
    other = SqliteRepositories(tmp_path / "storelens.db")  # another writer (think: the ingest)
    analytics = SqliteAnalytics(repos.connection, timezone=TZ)
    f = AnalyticsFilter(date(2026, 10, 20), date(2026, 10, 30), tz=TZ)
    analytics.kpis(f)  # the first read re-times the roll-ups to the store's zone: a write
    before = analytics.version()
    analytics.forget()
    analytics.kpis(f)  # reads change nothing
    assert analytics.version() == before
    other.visits.add(_random_visit(random.Random(1), 1))
    after = analytics.version()
    assert after != before
    repos.visits.add(_random_visit(random.Random(2), 2))  # the dashboard's own connection too
    assert analytics.version() != after
    repos.close()
    other.close()
