"""Retention of what outlives a camera track: anonymous sightings and customer records.

Both run from :meth:`core.privacy.PrivacyService.purge` (the hourly sweep: locally
``storelens purge`` and the long-running processes' purge thread; on AWS the
scheduled ``ExpireFunction``).

* :func:`roll_up_anonymous`: raw anonymous sightings whose hour ended more than
  ``STORELENS_ANONYMOUS_RETENTION_DAYS`` ago become one row per
  (store, camera, zone, UTC hour) standing for ``people`` sightings with their
  mean dwell, and the raw rows are deleted. Footfall, zone and hourly charts
  keep their numbers; individual track times are gone.
* :func:`records_due`: customers not seen for ``STORELENS_CUSTOMER_RECORD_RETENTION_DAYS``
  (at least the photo retention). The sweep turns their visits into anonymous
  sightings and then erases them (``docs/privacy.md`` says why the record is
  deleted rather than kept as a stub).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from core.models import ROLLUP_PREFIX, AnonymousSighting, utcnow
from core.ports import Repositories
from core.settings import Settings

#: The oldest time a roll-up looks at (before any camera of ours ran).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def roll_up_anonymous(settings: Settings, repos: Repositories, now: datetime | None = None) -> int:
    """Aggregate raw anonymous sightings older than the retention into hourly rows; return how many went.

    Idempotent: a roll-up's id is derived from the raw ids it replaces, so a sweep
    that stopped between writing the roll-up and deleting the raw rows, run again,
    finds the roll-up already stored and only deletes.
    """
    now = now or utcnow()
    cutoff = _hour(now - timedelta(days=settings.anonymous_retention_days))
    raw = [s for s in repos.anonymous.between(EPOCH, cutoff) if not s.is_rollup]
    groups: dict[tuple[str, str, str, datetime], list[AnonymousSighting]] = defaultdict(list)
    for s in raw:
        groups[(s.store_id, s.camera_id, s.zone, _hour(s.first_seen_at))].append(s)
    gone = 0
    for (store_id, camera_id, zone, hour), rows in sorted(groups.items(), key=lambda kv: kv[0][3]):
        ids = sorted(s.sighting_id for s in rows)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:20]
        people = sum(s.people for s in rows)
        mean_dwell = sum(s.dwell_seconds * s.people for s in rows) / people
        rollup = AnonymousSighting(
            sighting_id=f"{ROLLUP_PREFIX}{hour:%Y%m%d%H}_{digest}",
            store_id=store_id,
            camera_id=camera_id,
            zone=zone,
            first_seen_at=hour,
            last_seen_at=hour + timedelta(seconds=mean_dwell),
            people=people,
        )
        with repos.atomic():
            repos.anonymous.add(rollup)
            repos.anonymous.delete(ids)
        gone += len(ids)
    return gone


def records_due(settings: Settings, repos: Repositories, now: datetime | None = None) -> list[str]:
    """Customers whose last visit (or consent, or creation) is older than the record retention.

    The record retention is never shorter than the photo retention: a record is
    not deleted while its photos would still be kept.
    """
    now = now or utcnow()
    days = max(settings.customer_record_retention_days, settings.customer_retention_days)
    cutoff = now - timedelta(days=days)
    due = []
    for customer in repos.customers.list(limit=1_000_000):
        seen = [customer.consent_at or customer.created_at, customer.created_at]
        latest = repos.visits.latest_for_customer(customer.customer_id)
        if latest is not None:
            seen.append(latest.last_seen_at)
        if max(seen) < cutoff:
            due.append(customer.customer_id)
    return due


def visits_to_anonymous(repos: Repositories, customer_id: str) -> int:
    """Keep a departing customer's visits in footfall as anonymous sightings (no id, no face)."""
    visits = repos.visits.by_customer(customer_id)
    with repos.atomic():
        for v in visits:
            repos.anonymous.add(
                AnonymousSighting(
                    sighting_id=f"anon_{v.visit_id}",
                    store_id=v.store_id,
                    camera_id=v.camera_id,
                    zone=v.zone,
                    first_seen_at=v.started_at,
                    last_seen_at=v.last_seen_at,
                )
            )
    return len(visits)


__all__ = ["EPOCH", "records_due", "roll_up_anonymous", "visits_to_anonymous"]
