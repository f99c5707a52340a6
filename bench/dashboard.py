"""Dashboard render times on a big local store.

Generates (once, cached in the data dir) 10k customers, 1M visits over 180
days, 100k transactions (70% linked to customers), 100k face events and a few
pending identities straight into the SQLite store, then prints:

1. the time of every analytics query the Analytics page makes (SQL only), and
2. the time to render each dashboard page with Streamlit's AppTest (the whole
   script, as a logged-in admin), median of ``--repeat`` runs after a warm-up.

Target: <= 1 s per page. Usage::

    python bench/dashboard.py                      # data in /tmp/storelens-bench
    python bench/dashboard.py --data-dir DIR --visits 1000000 --repeat 3
    python bench/dashboard.py --queries-only       # no AppTest (no face engine needed)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.analytics import AnalyticsFilter  # noqa: E402
from core.local import store_visits  # noqa: E402
from core.local.analytics import SqliteAnalytics  # noqa: E402
from core.local.sqlite import SqliteRepositories, to_db_time  # noqa: E402

CAMERAS = {
    "cam-entrance": "entrance",
    "cam-aisles": "aisles",
    "cam-checkout": "checkout",
    "cam-fresh": "fresh",
    "cam-electronics": "electronics",
}
PAGES = ["live", "approvals", "customers", "analytics", "demo", "outbox"]


def generate(db: Path, customers: int, visits: int, transactions: int, events: int, seed: int = 1) -> None:
    """Fill a fresh store with synthetic rows (skipped when already filled)."""
    repos = SqliteRepositories(db)
    conn = repos.connection()
    have = conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0]
    if have >= visits:
        print(f"store already has {have:,} visits; reusing {db}")
        repos.close()
        return
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=180)
    span = int((now - start).total_seconds())
    t0 = time.perf_counter()
    ids = [f"cus_{i:020x}" for i in range(customers)]
    # Zipf-ish: a few regulars, many occasional visitors.
    weights = [1.0 / (1 + i) ** 0.8 for i in range(customers)]
    cams = list(CAMERAS)
    # Bulk load without the store-visit triggers (a row at a time they would cost
    # minutes); store_visits.migrate() below recreates them and backfills once.
    conn.execute("BEGIN")
    for name in ("store_visits_insert", "store_visits_extend", "store_visits_change", "store_visits_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DELETE FROM meta WHERE key LIKE 'store_visit%'")
    conn.executemany(
        "INSERT INTO customers (customer_id, name, email, loyalty_id, consent, consent_at, notes, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, '', ?, ?)",
        (
            (cid, f"Customer {i:05d}", f"c{i}@example.com", f"L{i:06d}", t, t, t)
            for i, cid in enumerate(ids)
            for t in [to_db_time(start + timedelta(seconds=rng.randrange(span)))]
        ),
    )

    def visit_rows():
        for n, cid in enumerate(rng.choices(ids, weights, k=visits)):
            began = start + timedelta(seconds=rng.randrange(span))
            cam = rng.choice(cams)
            yield (
                f"vis_{n:020x}",
                cid,
                "store-1",
                cam,
                CAMERAS[cam],
                to_db_time(began),
                to_db_time(began + timedelta(seconds=rng.randrange(30, 2400))),
                None,
                0.7,
            )

    conn.executemany("INSERT INTO visits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", visit_rows())

    def tx_rows():
        for n in range(transactions):
            linked = rng.random() < 0.7
            cid = rng.choices(ids, weights)[0] if linked else None
            yield (
                f"txn_{n:020x}",
                "store-1",
                to_db_time(start + timedelta(seconds=rng.randrange(span))),
                rng.randrange(199, 25_000),
                "EUR",
                None,
                cid,
                "cam-checkout",
            )

    conn.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tx_rows())

    def event_rows():
        for n in range(events):
            cam = rng.choice(cams)
            at = to_db_time(start + timedelta(seconds=rng.randrange(span)))
            cid = rng.choice(ids)
            yield (
                f"evt_{n:020x}",
                at,
                at,
                "store-1",
                cam,
                CAMERAS[cam],
                f"t{n}",
                "hog",
                0.9,
                '{"left": 0, "top": 0, "width": 80, "height": 80}',
                "visit",
                None,
                cid,
                None,
                0.7,
            )

    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", event_rows())
    for n in range(12):
        t = to_db_time(now - timedelta(minutes=n))
        conn.execute(
            "INSERT INTO pending_identities (pending_id, kind, status, store_id, created_at, last_seen_at, "
            "expires_at, face_count) VALUES (?, 'new', 'pending', 'store-1', ?, ?, ?, 0)",
            (f"pid_{n:020x}", t, t, to_db_time(now + timedelta(days=30))),
        )
    conn.execute("COMMIT")
    store_visits.migrate(conn)
    SqliteAnalytics(repos.connection).ensure_indexes()
    conn.execute("ANALYZE")
    repos.close()
    print(
        f"generated {customers:,} customers, {visits:,} visits, {transactions:,} transactions, "
        f"{events:,} events in {time.perf_counter() - t0:.1f} s"
    )


def time_it(fn, repeat: int) -> float:
    fn()  # warm-up (page cache, first-use imports)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def bench_queries(db: Path, repeat: int) -> None:
    a = SqliteAnalytics(db, timezone="UTC")  # the dashboard's default STORELENS_TIMEZONE
    today = datetime.now(UTC).date()
    ranges = [
        AnalyticsFilter.last_days(30, today),
        AnalyticsFilter.last_days(180, today),
        AnalyticsFilter.last_days(30, today, ("cam-entrance", "cam-checkout")),
    ]
    calls = {
        "kpis": a.kpis,
        "kpis(previous period)": lambda f: a.kpis(f.previous()),
        "visits_per_day": a.visits_per_day,
        "visits_per_hour": a.visits_per_hour,
        "weekday_hour": a.weekday_hour,
        "visit_frequency": a.visit_frequency,
        "top_customers(visits)": lambda f: a.top_customers(f, "visits"),
        "top_customers(spend)": lambda f: a.top_customers(f, "spend"),
        "spend_per_customer(week)": lambda f: a.spend_per_customer(f, "week"),  # the page's default
        "spend_per_customer(month)": lambda f: a.spend_per_customer(f, "month"),
        "zone_density": a.zone_density,
        "dwell_per_zone": a.dwell_per_zone,
    }
    a.ensure_indexes()
    print(
        "\neach analytics query alone (median s, range read again each time), 30 d / 180 d / 30 d 2 cameras:"
    )
    a.memo_seconds = 0.0
    for name, call in calls.items():
        cells = [f"{time_it(lambda f=f, call=call: call(f), repeat):7.3f}" for f in ranges]
        print(f"  {name:28s} " + " ".join(cells))
    a.memo_seconds = 5.0

    def page(f: AnalyticsFilter) -> None:
        a.forget()  # cold: nothing reused from an earlier page view
        for call in calls.values():
            call(f)

    print("  " + "-" * 52)
    print(
        f"  {'all of them, as one page':28s} "
        + " ".join(f"{time_it(lambda f=f: page(f), repeat):7.3f}" for f in ranges)
    )
    repos = SqliteRepositories(db)
    ids = [c.customer_id for c in repos.customers.list(None, limit=500)]
    summary = time_it(lambda: a.customer_summary(ids), repeat)
    print(f"  {'customer_summary(500)':28s} {summary:7.3f}  (the Customers table)")
    repos.close()


def bench_pages(data_dir: Path, repeat: int) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.users import User
    from pages import _ui

    os.environ["STORELENS_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("STORELENS_SECRET_KEY", "bench-secret")
    print("\npage render with AppTest (median s, logged-in admin, whole script):")
    print("  cold: caches cleared first; warm: a rerun with no new data (results cached)")
    worst = 0.0
    today = _ui.today()
    views = [(page, None) for page in PAGES] + [("analytics", 180)]
    for page, days in views:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
        at.session_state["user"] = User("bench", "admin")
        at.run()  # the frame; services start here (once per process)
        at.switch_page(f"pages/{page}.py")
        if days:
            at.run()
            at.date_input(key="an_dates").set_value((today - timedelta(days=days - 1), today))

        def render(at=at, page=page, cold=True):
            if cold:
                # st.cache_data outlives AppTest runs in this process (memory
                # storage): clear it, and the analytics' shared range reads.
                st.cache_data.clear()
                _ui.analytics().forget()  # type: ignore[attr-defined]
            at.run()
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].message}")

        s = time_it(render, repeat)
        warm = time_it(lambda render=render: render(cold=False), repeat)
        worst = max(worst, s)
        name = f"{page} {days} d" if days else page
        print(f"  {name:16s} cold {s:7.3f}   warm {warm:7.3f}")
    print(f"  worst page (cold) {worst:7.3f}  (target <= 1 s)")
    st.cache_data.clear()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/storelens-bench"))
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--visits", type=int, default=1_000_000)
    p.add_argument("--transactions", type=int, default=100_000)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--queries-only", action="store_true")
    args = p.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    db = args.data_dir / "storelens.db"
    generate(db, args.customers, args.visits, args.transactions, args.events)
    bench_queries(db, args.repeat)
    if not args.queries_only:
        bench_pages(args.data_dir, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
