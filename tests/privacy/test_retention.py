"""Retention sweep on both backends: anonymous sightings rolled up per hour and zone, and
customer records deleted after the record retention (their visits kept as anonymous sightings).

Local: SQLite and the real engine. AWS: S3 and DynamoDB in moto, Rekognition through the
behavioural fake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.bootstrap import Services
from core.consent import footfall
from core.models import AnonymousSighting, Visit, new_id, utcnow
from core.retention import EPOCH
from tests.privacy.conftest import enrol
from tests.privacy.test_aws_consent_first import aws_services  # noqa: F401  (fixture)


@pytest.fixture(params=["local", "aws"])
def svc(request: pytest.FixtureRequest) -> Services:
    if request.param == "local":
        return request.getfixturevalue("consent_first")  # type: ignore[no-any-return]
    services, _s3, _bucket = request.getfixturevalue("aws_services")
    return services  # type: ignore[no-any-return]


def _sighting(at: datetime, zone: str, seconds: float, i: int) -> AnonymousSighting:
    return AnonymousSighting(
        f"anon_t{i}", "store-1", f"cam-{zone}", zone, at, at + timedelta(seconds=seconds)
    )


def test_old_anonymous_sightings_become_hourly_rollups_with_the_same_counts(svc: Services) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    old = now - timedelta(days=svc.settings.anonymous_retention_days + 5)
    old_hour = old.replace(minute=0, second=0, microsecond=0)
    rows = [
        _sighting(old_hour + timedelta(minutes=5), "entrance", 10, 1),
        _sighting(old_hour + timedelta(minutes=20), "entrance", 20, 2),
        _sighting(old_hour + timedelta(minutes=50), "entrance", 30, 3),
        _sighting(old_hour + timedelta(minutes=10), "checkout", 40, 4),
        _sighting(old_hour + timedelta(hours=1, minutes=1), "entrance", 50, 5),
        _sighting(now - timedelta(days=3), "entrance", 60, 6),  # recent: stays raw
    ]
    for r in rows:
        svc.repos.anonymous.add(r)
    day = (old_hour.replace(hour=0), old_hour.replace(hour=0) + timedelta(days=1))
    before = footfall(svc.repos, *day)

    report = svc.privacy.purge(now=now)
    assert report.sightings_rolled_up == 5
    after = footfall(svc.repos, *day)
    assert (
        (after.anonymous, after.by_zone)
        == (before.anonymous, before.by_zone)
        == (5, {"checkout": 1, "entrance": 4})
    )
    assert after.anonymous_dwell_seconds == pytest.approx(before.anonymous_dwell_seconds)  # 30 s
    stored = svc.repos.anonymous.between(EPOCH, now)
    ids = {s.sighting_id for s in stored}
    assert "anon_t6" in ids and not ids & {"anon_t1", "anon_t2", "anon_t3", "anon_t4", "anon_t5"}
    rollups = sorted((s for s in stored if s.is_rollup), key=lambda s: (s.first_seen_at, s.zone))
    assert [(s.first_seen_at, s.zone, s.people, s.dwell_seconds) for s in rollups] == [
        (old_hour, "checkout", 1, 40.0),
        (old_hour, "entrance", 3, 20.0),
        (old_hour + timedelta(hours=1), "entrance", 1, 50.0),
    ]
    # Idempotent: the next sweep changes nothing.
    assert svc.privacy.purge(now=now).sightings_rolled_up == 0
    assert svc.repos.anonymous.between(EPOCH, now) == stored


def test_customer_record_goes_after_the_record_retention_and_visits_stay_as_footfall(svc: Services) -> None:
    barack = enrol(svc, "Barack", "obama", loyalty_id="L-1")
    grace = enrol(svc, "Grace", "grace_hopper")
    seen = utcnow() - timedelta(days=3)
    visit = Visit(
        new_id("vis"), barack.customer_id, "store-1", "cam-1", "entrance", seen, seen + timedelta(minutes=4)
    )
    svc.repos.visits.add(visit)
    later = utcnow() + timedelta(days=10)  # grace comes back later than he was enrolled
    recent = Visit(new_id("vis"), grace.customer_id, "store-1", "cam-1", "entrance", later, later)
    svc.repos.visits.add(recent)

    # After the photo retention only the biometrics go; the record stays.
    # (His newest sign of life is his enrolment, just now.)
    photos_due = utcnow() + timedelta(days=svc.settings.customer_retention_days + 1)
    report = svc.privacy.purge(now=photos_due)
    assert barack.customer_id in report.retired and report.records_deleted == []
    assert svc.repos.customers.get(barack.customer_id).loyalty_id == "L-1"

    # After the record retention the record goes; grace, seen later than him, is due later.
    record_due = utcnow() + timedelta(days=svc.settings.customer_record_retention_days, hours=1)
    report = svc.privacy.purge(now=record_due)
    assert report.records_deleted == [barack.customer_id]
    assert [c.customer_id for c in svc.repos.customers.list()] == [grace.customer_id]
    assert svc.repos.visits.by_customer(barack.customer_id) == []
    # His visit still counts, anonymously: no customer id anywhere in it (and, being
    # older than the anonymous retention by then, already in an hourly roll-up).
    hour = seen.replace(minute=0, second=0, microsecond=0)
    window = (hour, hour + timedelta(hours=1))
    counted = footfall(svc.repos, *window)
    assert (counted.visits, counted.anonymous) == (0, 1)
    (kept,) = svc.repos.anonymous.between(*window)
    assert (kept.zone, kept.people, kept.dwell_seconds, kept.is_rollup) == ("entrance", 1, 240.0, True)
    assert barack.customer_id not in repr(kept)
    assert any(
        a.action == "erase" and a.actor == "retention" for a in svc.repos.audit.list(barack.customer_id)
    )


def test_record_retention_is_never_shorter_than_the_photo_retention(svc: Services) -> None:
    from core.retention import records_due

    short = svc.settings.with_(customer_record_retention_days=1, customer_retention_days=30)
    barack = enrol(svc, "Barack", "obama")
    assert records_due(short, svc.repos, utcnow() + timedelta(days=10)) == []
    assert records_due(short, svc.repos, utcnow() + timedelta(days=31)) == [barack.customer_id]
