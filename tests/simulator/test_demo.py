"""The demo builder fills a fresh local backend like a real store (real pipeline included), reruns safely."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.bootstrap import Services
from simulator.demo import CAST, OPEN_HOURS, build_demo


def test_demo_builds_a_store_with_patterns_varied_crops_pending_and_sales(
    services: Services, tmp_path: Path
) -> None:
    end = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday: 21 days are three whole weeks
    start = end - timedelta(days=21)
    steps: list[float] = []
    report = build_demo(
        services,
        days=21,
        customers=40,
        replay_days=5,
        end=end,
        workdir=tmp_path / "demo",
        progress=lambda fraction, _msg: steps.append(fraction),
    )
    assert not report.skipped and not report.stopped
    assert steps[-1] == 1.0 and steps == sorted(steps)

    # the real pipeline: one person per replay gives a first event and at most a final one
    assert report.events >= 5 and report.replays <= report.events <= 2 * report.replays
    customers = services.repos.customers.list()
    names = {c.name for c in customers}
    assert "Barack Obama" in names  # enrolled
    assert report.approved and set(report.approved) <= names  # approved from the queue
    assert report.outcomes.get("visit", 0) >= 1 and report.outcomes.get("pending", 0) >= 1
    assert report.pending_left >= 1

    # the synthetic customers: seeded details, most with a loyalty card, distinct e-mails
    cast = {name for name, _, _ in CAST.values()}
    synthetic = [c for c in customers if c.name not in cast]
    assert report.customers == 40 and len(synthetic) == 40
    assert len({c.email for c in synthetic}) == 40
    assert 20 <= sum(c.loyalty_id is not None for c in synthetic) < 40

    # store visits: ~17 per customer over eight weeks, so ~6 over three weeks
    visits = services.repos.visits.between(start, end)
    entrances = [v for v in visits if v.zone == "entrance"]
    assert 150 <= report.store_visits <= 350
    assert len(entrances) >= report.store_visits
    assert {v.zone for v in visits} >= {"entrance", "aisles", "fresh", "electronics", "checkout"}
    weekdays = Counter(v.started_at.weekday() for v in entrances)
    hours = Counter(v.started_at.hour for v in entrances)
    assert len(weekdays) == 7 and weekdays[5] > weekdays[1]  # Saturdays busier than Tuesdays
    assert len(hours) >= 10 and hours[18] > hours[9]  # evenings busier than mornings
    for visit in visits:  # open hours only, closed at night
        opens, closes = OPEN_HOURS[visit.started_at.weekday()]
        assert opens <= visit.started_at.hour < closes, visit
    # each stay lasts at most 30 minutes from the entrance to the last zone
    by_customer: dict[str, list[datetime]] = {}
    for visit in sorted(visits, key=lambda v: v.started_at):
        if visit.zone == "entrance":
            by_customer.setdefault(visit.customer_id, []).append(visit.started_at)
        elif visit.customer_id in by_customer:
            assert visit.last_seen_at - by_customer[visit.customer_id][-1] <= timedelta(minutes=30)

    # similarities vary like real ones, and crops differ from sighting to sighting
    similarities = [v.similarity for v in entrances if v.similarity is not None]
    assert len(similarities) >= report.store_visits
    assert len(set(similarities)) > 50 and max(similarities) < 1.0
    assert 0.6 < sum(similarities) / len(similarities) < 0.8
    synthetic_ids = {c.customer_id for c in synthetic}
    events = services.repos.events.recent(limit=1000, since=start)
    crops = [services.blobs.get(e.crop_key) for e in events if e.crop_key and e.customer_id in synthetic_ids]
    assert len(crops) >= 150
    assert len({hashlib.sha256(c).hexdigest() for c in crops}) == len(crops)

    # a customer's profile shows their sightings' crops (not as templates)
    regular = max(synthetic, key=lambda c: len(services.repos.faces.by_customer(c.customer_id)))
    faces = services.repos.faces.by_customer(regular.customer_id)
    assert len(faces) >= 3 and services.repos.faces.count_templates(regular.customer_id) == 0
    assert len({services.blobs.get(f.crop_key) for f in faces}) == len(faces)
    # the pipeline's crops differ too (each replay is relit): approval cards show different pictures
    pipeline = [
        services.blobs.get(e.crop_key) for e in events if e.crop_key and e.customer_id not in synthetic_ids
    ]
    assert len(pipeline) >= 5 and len(set(pipeline)) == len(pipeline)

    # sales: linked by loyalty id, by the checkout camera, and unattributed
    transactions = services.repos.transactions.between(start, end)
    assert report.transactions == len(transactions) > report.store_visits // 2
    assert report.linked_by_loyalty > 50 and report.linked_by_camera > 0
    assert any(t.customer_id is None for t in transactions)

    again = build_demo(services, days=21, customers=40, end=end, workdir=tmp_path / "demo")
    assert again.skipped
    assert len(services.repos.visits.between(start, end)) == len(visits)
