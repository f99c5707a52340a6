"""Privacy: erase a customer everywhere, and purge what is past its retention.

Retention (:meth:`PrivacyService.purge`, run hourly by the AWS schedule and by
``storelens purge`` / the long-running local processes): undecided pending
identities past ``STORELENS_PENDING_TTL_DAYS`` are discarded, customers not
seen for ``STORELENS_CUSTOMER_RETENTION_DAYS`` lose their photos and templates
(:meth:`PrivacyService.forget_biometrics`), customers not seen for
``STORELENS_CUSTOMER_RECORD_RETENTION_DAYS`` lose their record (visits kept as
anonymous sightings, then erased), and anonymous sightings older than
``STORELENS_ANONYMOUS_RETENTION_DAYS`` are rolled up per hour and zone
(:mod:`core.retention`).

Erasure removes the person's crops, face-index entries, face rows, visits,
links from sales (the sale stays, unattributed), the events that named them,
the pending identities they came from and any stored approval e-mails, then
writes an audit entry that names only the opaque id.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.consent import inactive_customers
from core.models import TRACK_LINK_RETENTION, AuditEntry, PendingStatus, new_id, utcnow
from core.ports import ApprovalWorkflow, BlobStore, FaceIndex, Notifier, Repositories
from core.retention import records_due, roll_up_anonymous, visits_to_anonymous
from core.settings import Settings

if TYPE_CHECKING:
    from core.approvals import ApprovalService
    from core.gallery import GalleryPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    customer_id: str
    crops: int
    index_entries: int
    faces: int
    visits: int
    transactions_unlinked: int
    events: int
    pending_identities: int
    mails: int


@dataclass(frozen=True, slots=True)
class PurgeReport:
    expired: list[str] = field(default_factory=list)
    #: customers whose photos and templates were deleted for inactivity
    retired: list[str] = field(default_factory=list)
    #: customers whose record was deleted for inactivity (visits kept as anonymous sightings)
    records_deleted: list[str] = field(default_factory=list)
    #: raw anonymous sightings replaced by hourly roll-ups
    sightings_rolled_up: int = 0


class PrivacyService:
    def __init__(
        self,
        *,
        settings: Settings,
        repos: Repositories,
        blobs: BlobStore,
        faces: FaceIndex,
        notifier: Notifier,
        workflow: ApprovalWorkflow,
        approvals: ApprovalService,
        gallery: GalleryPublisher | None = None,
    ) -> None:
        self.gallery = gallery
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.faces = faces
        self.notifier = notifier
        self.workflow = workflow
        self.approvals = approvals

    def erase(self, customer_id: str, actor: str = "system", *, refresh: bool = True) -> ErasureReport:
        """Remove every trace of a customer; raise ``NotFoundError`` if unknown."""
        self.repos.customers.get(customer_id)
        faces = self.repos.faces.by_customer(customer_id)
        index_ids = [f.index_face_id for f in faces if f.index_face_id]
        # Pending identities that became this customer still link to them.
        origins = [
            p
            for p in self.repos.pending.list(None)
            if p.customer_id == customer_id or p.suggested_customer_id == customer_id
        ]
        if index_ids:
            self.faces.delete_faces(self.settings.collection_id, index_ids)
        # Templates stored under the person's opaque ids without a face row
        # (none are expected locally, where both commit together).
        by_external = getattr(self.faces, "delete_by_external_id", None)
        if by_external is not None:
            for external_id in (customer_id, *(p.pending_id for p in origins)):
                by_external(self.settings.collection_id, external_id)
        crops = 0
        for face in faces:
            if face.crop_key:
                self.blobs.delete(face.crop_key)
                crops += 1
        mails = sum(self.notifier.forget(p.pending_id) for p in origins)
        mails += self.notifier.forget(customer_id)  # mails to the customer (core.mail.build_customer_mail)
        with self.repos.atomic():
            for face in faces:
                self.repos.faces.delete(face.face_id)
            visits = self.repos.visits.delete_by_customer(customer_id)
            unlinked = self.repos.transactions.unlink_customer(customer_id)
            events = self.repos.events.forget_customer(customer_id)
            self.repos.tracks.forget(customer_id)
            for pending in origins:
                events += self.repos.events.forget_pending(pending.pending_id)
                self.repos.tracks.forget(pending.pending_id)
                self.workflow.forget(pending.pending_id)
                if pending.status is PendingStatus.PENDING:
                    # A review item that suggested this person: keep the item,
                    # drop the suggestion.
                    pending.suggested_customer_id = None
                    pending.suggested_similarity = None
                    self.repos.pending.update(pending)
                else:
                    self.repos.pending.delete(pending.pending_id)
            self.repos.customers.delete(customer_id)
            report = ErasureReport(
                customer_id=customer_id,
                crops=crops,
                index_entries=len(index_ids),
                faces=len(faces),
                visits=visits,
                transactions_unlinked=unlinked,
                events=events,
                pending_identities=len(origins),
                mails=mails,
            )
            self.repos.audit.append(
                AuditEntry(new_id("aud"), utcnow(), actor, "erase", customer_id, _counts(report))
            )
        if refresh:
            self.refresh_gallery()
        return report

    def refresh_gallery(self) -> None:
        """Rewrite the edge agents' gallery of consented templates, where one is kept (AWS).

        A failure is logged, not raised: the erasure or enrolment that called it
        is done, and the hourly purge rewrites the gallery again.
        """
        if self.gallery is None:
            return
        try:
            self.gallery.refresh()
        except Exception:
            log.exception("could not rewrite the edge gallery; the next purge retries")

    def purge(self, now: datetime | None = None, actor: str = "retention") -> PurgeReport:
        """Discard pending identities past ``STORELENS_PENDING_TTL_DAYS`` (crops, index, rows),
        track links older than ``TRACK_LINK_RETENTION``, and the photos and templates of
        customers not seen for ``STORELENS_CUSTOMER_RETENTION_DAYS`` (:meth:`forget_biometrics`).

        The TTL is the current setting: an item is expired when its stored
        ``expires_at`` has passed *or* it is older than today's TTL, so
        lowering the setting applies to items created before. Dead letters
        lose their images after ``STORELENS_DEAD_LETTER_IMAGE_HOURS``.
        """
        now = now or utcnow()
        cutoff = now - timedelta(days=self.settings.pending_ttl_days)
        due = {p.pending_id: p for p in self.repos.pending.expired(now)}
        for pending in self.repos.pending.list(PendingStatus.PENDING):
            if pending.created_at < cutoff:
                due.setdefault(pending.pending_id, pending)
        expired = []
        # Which identity a camera track was is only needed while the track lasts.
        self.repos.tracks.prune(now - TRACK_LINK_RETENTION)
        for pending_id in due:
            self.workflow.cancel(pending_id, "expired")
            self.approvals.expire(pending_id, actor)
            expired.append(pending_id)
        prune = getattr(self.repos.events, "prune_dead_letters", None)
        if prune is not None:
            with self.repos.atomic():
                prune(now)
        retired = []
        for customer_id in inactive_customers(self.settings, self.repos, now):
            self.forget_biometrics(customer_id, actor, refresh=False)
            retired.append(customer_id)
        deleted = []
        for customer_id in records_due(self.settings, self.repos, now):
            # Their visits stay in footfall without an id; then the record goes like an erasure.
            visits_to_anonymous(self.repos, customer_id)
            self.erase(customer_id, actor, refresh=False)
            deleted.append(customer_id)
        rolled = roll_up_anonymous(self.settings, self.repos, now)
        # Every sweep: enrolments and approvals made by processes that could not
        # embed, and anyone retired above, reach the edge gallery within the hour.
        self.refresh_gallery()
        return PurgeReport(
            expired=expired, retired=retired, records_deleted=deleted, sightings_rolled_up=rolled
        )

    def forget_biometrics(self, customer_id: str, actor: str = "retention", *, refresh: bool = True) -> int:
        """Delete a customer's photos, face rows and templates; keep the customer.

        They are no longer recognised (a later sighting is a stranger again);
        their record, visits and sales stay. Returns the number of faces removed.
        """
        faces = self.repos.faces.by_customer(customer_id)
        index_ids = [f.index_face_id for f in faces if f.index_face_id]
        if index_ids:
            self.faces.delete_faces(self.settings.collection_id, index_ids)
        with self.repos.atomic():
            for face in faces:
                if face.event_id and face.crop_key:
                    self.repos.events.move_crop(face.event_id, "")
                self.repos.faces.delete(face.face_id)
            self.repos.audit.append(
                AuditEntry(
                    new_id("aud"),
                    utcnow(),
                    actor,
                    "forget_biometrics",
                    customer_id,
                    {"faces": len(faces), "index_entries": len(index_ids)},
                )
            )
        for face in faces:
            if face.crop_key:
                self.blobs.delete(face.crop_key)
        if refresh:
            self.refresh_gallery()
        return len(faces)

    def start_auto_purge(self, interval_seconds: float | None = None) -> threading.Thread | None:
        """Purge now and then every ``interval_seconds`` from a daemon thread (long-running processes).

        Several processes doing this at once is harmless: each purge is
        idempotent. Returns the thread (``None`` when the interval is 0).
        """
        interval = self.settings.purge_interval_seconds if interval_seconds is None else interval_seconds
        if interval <= 0:
            return None
        stop = self._stop_purge = threading.Event()

        def loop() -> None:
            while True:
                try:
                    report = self.purge()
                    if report.expired:
                        log.info("retention purge discarded %d pending identities", len(report.expired))
                except Exception:  # the next round retries; a purge must never kill its host
                    log.exception("retention purge failed")
                if stop.wait(interval):
                    return

        thread = self._purge_thread = threading.Thread(target=loop, name="storelens-purge", daemon=True)
        thread.start()
        return thread

    def stop_auto_purge(self, timeout: float = 30.0) -> None:
        """Stop the thread started by :meth:`start_auto_purge` (if any) and wait for its round to end.

        Call it before closing the repositories: a purge in flight uses them.
        """
        stop = getattr(self, "_stop_purge", None)
        if stop is not None:
            stop.set()
        thread = getattr(self, "_purge_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _counts(report: ErasureReport) -> dict[str, object]:
    counts: dict[str, object] = asdict(report)
    counts.pop("customer_id")
    return counts
