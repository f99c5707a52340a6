"""Privacy: erase a customer everywhere, and purge what was never approved.

Erasure removes the person's crops, face-index entries, face rows, visits,
links from sales (the sale stays, unattributed), the events that named them,
the pending identities they came from and any stored approval e-mails, then
writes an audit entry that names only the opaque id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from core.models import TRACK_LINK_RETENTION, AuditEntry, PendingStatus, new_id, utcnow
from core.ports import ApprovalWorkflow, BlobStore, FaceIndex, Notifier, Repositories
from core.settings import Settings

if TYPE_CHECKING:
    from core.approvals import ApprovalService


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
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.faces = faces
        self.notifier = notifier
        self.workflow = workflow
        self.approvals = approvals

    def erase(self, customer_id: str, actor: str = "system") -> ErasureReport:
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
        crops = 0
        for face in faces:
            if face.crop_key:
                self.blobs.delete(face.crop_key)
                crops += 1
        mails = sum(self.notifier.forget(p.pending_id) for p in origins)
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
        return report

    def purge(self, now: datetime | None = None, actor: str = "retention") -> PurgeReport:
        """Discard pending identities past ``STORELENS_PENDING_TTL_DAYS`` (crops, index, rows)
        and track links older than ``TRACK_LINK_RETENTION``."""
        now = now or utcnow()
        expired = []
        # Which identity a camera track was is only needed while the track lasts.
        self.repos.tracks.prune(now - TRACK_LINK_RETENTION)
        for pending in self.repos.pending.expired(now):
            self.workflow.cancel(pending.pending_id, "expired")
            self.approvals.expire(pending.pending_id, actor)
            expired.append(pending.pending_id)
        return PurgeReport(expired=expired)


def _counts(report: ErasureReport) -> dict[str, object]:
    counts: dict[str, object] = asdict(report)
    counts.pop("customer_id")
    return counts
