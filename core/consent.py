"""Consent-first mode: recognise only people who enrolled with consent.

``STORELENS_PRIVACY_MODE=consent-first`` changes what ingest keeps
(:func:`discards` / :func:`record_anonymous`): a face that is not a consented
customer (the ``new`` *and* the ``review`` band) is matched in memory and then
dropped. No crop, no template, no pending identity is written; only an
:class:`~core.models.AnonymousSighting` (store, camera, zone, time span of the
track) and the event id (so a redelivery stays a duplicate).

This module also holds what the rest of ``core`` needs to know about consent
without the enrolment service: the notice people consent to
(:func:`consent_notice`), consent records (:func:`consent_records`, kept in the
audit log), and which customers are past their retention
(:func:`inactive_customers`). Enrolment, links and data-subject rights live in
:mod:`core.enrolment`. Nothing here imports a service module, so ingest and
privacy can use it without an import circle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.models import (
    AnonymousSighting,
    AuditEntry,
    Band,
    FaceEvent,
    IngestOutcome,
    IngestResult,
    utcnow,
)
from core.ports import Repositories
from core.settings import Settings

if TYPE_CHECKING:
    from core.recognition import Recognition

REVIEW = "review"
CONSENT_FIRST = "consent-first"


# ------------------------------------------------------------------- ingest hook


def discards(settings: Settings, verdict: Recognition) -> bool:
    """Whether ingest must drop this face (consent-first mode, not a consented customer).

    The review band counts as unknown: storing a "possible returning customer"
    would keep a template of someone who never consented.
    """
    return settings.privacy_mode == CONSENT_FIRST and verdict.band is not Band.MATCH


def record_anonymous(repos: Repositories, event: FaceEvent) -> IngestResult:
    """Keep only where and when someone was seen; the face is never written.

    The event row (no crop key, no ids, no similarity) makes a redelivery a
    duplicate; the sighting spans the track's crops, so dwell is measurable. All
    events of one camera track make one sighting (later ones widen its span).
    """
    times = [c.captured_at for c in event.all_crops] or [event.captured_at]
    if event.seen_until is not None:  # an anonymous event from the edge spans the whole track
        times.append(event.seen_until)
    # One sighting per camera track (its id names the track, not the event): a track
    # usually sends two or three events, and each must not count as another person.
    track = hashlib.sha256(f"{event.store_id}\n{event.camera_id}\n{event.track_id}".encode()).hexdigest()[:24]
    sighting = AnonymousSighting(
        sighting_id=f"anon_{track}",
        store_id=event.store_id,
        camera_id=event.camera_id,
        zone=event.zone,
        first_seen_at=min(times),
        last_seen_at=max(times),
    )
    with repos.atomic():
        if not repos.anonymous.add(sighting):
            repos.anonymous.extend(sighting.sighting_id, sighting.first_seen_at, sighting.last_seen_at)
        repos.events.record(event, None, IngestOutcome.ANONYMOUS.value, None, None, None)
    return IngestResult(event.event_id, IngestOutcome.ANONYMOUS)


def dead_letter_payload(settings: Settings, raw: bytes, limit: int) -> bytes:
    """What a dead letter may keep of a rejected payload: nothing in consent-first
    mode (it may hold the face of someone who never consented)."""
    return b"" if settings.privacy_mode == CONSENT_FIRST else raw[:limit]


@dataclass(frozen=True, slots=True)
class Footfall:
    """Everyone counted over a period: consented customers' visits plus anonymous sightings."""

    visits: int
    anonymous: int
    by_zone: dict[str, int]
    anonymous_dwell_seconds: float

    @property
    def total(self) -> int:
        return self.visits + self.anonymous


def day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC day containing ``now``, as a half-open ``[start, end)`` range."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def footfall(repos: Repositories, start: datetime, end: datetime) -> Footfall:
    """Footfall in ``[start, end)`` that counts people who are not customers too."""
    visits = repos.visits.between(start, end)
    anonymous = repos.anonymous.between(start, end)
    zones: dict[str, int] = {}
    for v in visits:
        zones[v.zone] = zones.get(v.zone, 0) + 1
    for s in anonymous:  # an hourly roll-up stands for s.people sightings
        zones[s.zone] = zones.get(s.zone, 0) + s.people
    people = sum(s.people for s in anonymous)
    dwell = sum(s.dwell_seconds * s.people for s in anonymous) / people if people else 0.0
    return Footfall(len(visits), people, dict(sorted(zones.items())), dwell)


# ----------------------------------------------------------------------- notice


@dataclass(frozen=True, slots=True)
class Notice:
    """The consent text a person reads before enrolling; ``version`` names this exact text."""

    version: str
    text: str


def consent_notice(settings: Settings) -> Notice:
    """The enrolment notice for these settings. Its version is a hash of the text,
    so any change to the wording (or the retention period) is a new version."""
    contact = f" Contact: {settings.privacy_contact}." if settings.privacy_contact else ""
    text = (
        f"{settings.privacy_controller} uses face recognition in this store to recognise "
        "customers who choose to join, so that it can count their visits and link them to "
        "their purchases and loyalty account.\n\n"
        "If you agree, we take a photo of your face and keep a face template (a numerical "
        "description of your face) and the photo. Each time a camera in the store recognises "
        "you, we record the time and the area of the store you were in.\n\n"
        f"We delete your photos and template {settings.customer_retention_days} days after your "
        "last visit, or at once when you withdraw your consent. You can withdraw at any time, "
        "with the link in any e-mail we send you or by asking staff; it is as easy as giving it.\n\n"
        "Joining is optional. If you do not join, the cameras still count people anonymously: "
        "your face is compared with those of enrolled customers and discarded at once, without "
        "keeping any image or template of it.\n\n"
        f"You can ask for a copy of your data or its erasure at any time.{contact}"
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return Notice(version=f"notice-{digest}", text=text)


# ---------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """Proof of one explicit consent (stored in the audit log, action ``consent``).

    It names the person only by opaque id, so it survives their erasure as
    proof that the processing had a basis while it lasted.
    """

    consent_id: str
    customer_id: str
    given_at: datetime
    notice_version: str
    channel: str
    assisted_by: str | None
    store_id: str


def consent_records(repos: Repositories, customer_id: str) -> list[ConsentRecord]:
    """Every consent a customer gave, oldest first (audit entries ``consent``)."""
    entries = [a for a in repos.audit.list(customer_id, limit=1000) if a.action == "consent"]
    return sorted((_record(a) for a in entries), key=lambda r: r.given_at)


def inactive_customers(settings: Settings, repos: Repositories, now: datetime | None = None) -> list[str]:
    """Customers with photos or templates whose last visit (or enrolment, or
    newest photo) is older than ``STORELENS_CUSTOMER_RETENTION_DAYS``."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.customer_retention_days)
    due = []
    for customer in repos.customers.list(limit=1_000_000):
        faces = repos.faces.by_customer(customer.customer_id)
        if not faces:
            continue
        latest = repos.visits.latest_for_customer(customer.customer_id)
        seen = [customer.consent_at or customer.created_at, *(f.captured_at for f in faces)]
        if latest is not None:
            seen.append(latest.last_seen_at)
        if max(seen) < cutoff:
            due.append(customer.customer_id)
    return due


def _record(entry: AuditEntry) -> ConsentRecord:
    d = entry.details
    return ConsentRecord(
        consent_id=str(d.get("consent_id", entry.audit_id)),
        customer_id=entry.subject_id,
        given_at=entry.at,
        notice_version=str(d.get("notice_version", "")),
        channel=str(d.get("channel", "")),
        assisted_by=d.get("assisted_by") if isinstance(d.get("assisted_by"), str) else None,
        store_id=str(d.get("store_id", "")),
    )
