"""Approvals: one human decision per pending identity, which is also the consent record.

Flow: ingest opens a pending identity -> :meth:`ApprovalService.request` starts
the workflow -> the workflow calls :meth:`DecisionRecorder.notify` (the e-mail
with signed links) -> a human decides in the dashboard or through a link ->
:meth:`ApprovalService.decide` hands the decision to the workflow -> the
workflow calls :meth:`DecisionRecorder.record_decision`, which does the work:

* ``approve``         new Customer (consent recorded), faces re-indexed under
                      the customer's opaque id, past sightings become visits
* ``confirm``/``merge`` the faces join an existing customer the same way
* ``reject``          faces leave the index, crops and rows are deleted
* ``not_a_customer``  do-not-track: a few templates stay (no crops) so later
                      sightings are dropped at ingest
* ``not_this_person`` a review item becomes a new-person item (new e-mail)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import assert_never

from core.crop_keys import approved_key
from core.errors import ConflictError, NotFoundError, ValidationError
from core.mail import MAIL_ACTIONS, approval_link, build_approval_mail
from core.models import (
    AuditEntry,
    Customer,
    CustomerDetails,
    Face,
    FaceStatus,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    new_id,
    utcnow,
)
from core.ports import (
    ApprovalWorkflow,
    BlobStore,
    Decision,
    DecisionAction,
    FaceIndex,
    Notifier,
    Repositories,
)
from core.settings import Settings
from core.sightings import record_sighting
from core.tokens import LinkClaims, TokenSigner

#: Faces kept as templates when someone is marked "not a customer".
SUPPRESSION_TEMPLATES = 5
#: Faces indexed under a customer when a pending identity becomes one.
TEMPLATES_ON_APPROVAL = 8


def validate_details(details: CustomerDetails | None) -> CustomerDetails:
    """Check what the approver typed; raise ``ValidationError`` naming the field."""
    if details is None:
        raise ValidationError("approving needs the customer's details")
    name = details.name.strip()
    if not name:
        raise ValidationError("name is required")
    if len(name) > 200:
        raise ValidationError("name is longer than 200 characters")
    email = (details.email or "").strip() or None
    if email and ("@" not in email or email.startswith("@") or email.endswith("@") or " " in email):
        raise ValidationError(f"e-mail {email!r} is not an e-mail address")
    if not details.consent:
        raise ValidationError(
            "consent is required to approve; choose 'not a customer' to stop tracking this person"
        )
    loyalty = (details.loyalty_id or "").strip() or None
    return CustomerDetails(
        name=name, email=email, loyalty_id=loyalty, consent=True, notes=details.notes.strip()
    )


class DecisionRecorder:
    """Carries out what the approval workflow asks: mail the approver, record a decision, expire.

    Implements :class:`core.ports.ApprovalCallbacks`. It needs no workflow, so
    the bootstrap builds it first, hands it to the workflow, and then builds
    :class:`ApprovalService` with both.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        repos: Repositories,
        blobs: BlobStore,
        faces: FaceIndex,
        notifier: Notifier,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.faces = faces
        self.notifier = notifier
        self._signer: TokenSigner | None = None

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self._signer = TokenSigner(self.settings.resolved_secret())
        return self._signer

    @property
    def collection_id(self) -> str:
        return self.settings.collection_id

    def faces_of(self, pending_id: str) -> list[Face]:
        return self.repos.faces.by_pending(pending_id)

    def links_for(self, pending: PendingIdentity) -> dict[str, str]:
        """One signed, single-use link per action offered for this kind."""
        ttl = self.settings.token_ttl_hours * 3600
        return {
            action: approval_link(
                self.settings.public_url, self.signer.issue(pending.pending_id, action, ttl)
            )
            for action, _label in MAIL_ACTIONS[pending.kind]
        }

    def notify(self, pending_id: str) -> str:
        """Send the approval e-mail (called by the workflow). Returns the message id."""
        pending = self.repos.pending.get(pending_id)
        faces = self.faces_of(pending_id)
        crops = [self.blobs.get(f.crop_key) for f in faces[:4] if f.crop_key]
        suggested = None
        if pending.suggested_customer_id:
            try:
                suggested = self.repos.customers.get(pending.suggested_customer_id).name
            except NotFoundError:
                suggested = None
        where = sorted({f"{f.camera_id}/{f.zone}" for f in faces})
        summary = f"Seen {pending.face_count} time(s) at {', '.join(where) or 'unknown'}" + (
            f", last at {pending.last_seen_at:%Y-%m-%d %H:%M} UTC." if faces else "."
        )
        mail = build_approval_mail(
            pending=pending,
            crops=crops,
            links=self.links_for(pending),
            sender=self.settings.ses_sender or self.settings.mail_sender,
            recipients=[r.strip() for r in self.settings.approval_recipients.split(",") if r.strip()],
            suggested_name=suggested,
            seen_summary=summary,
        )
        return self.notifier.send(mail)

    # --------------------------------------------------------------- recording
    def record_decision(self, pending_id: str, decision: Decision) -> str | None:
        """Carry out a decision (called by the workflow). Returns the customer id, if any."""
        pending = self.repos.pending.get(pending_id)
        if pending.status is not PendingStatus.PENDING:
            raise ConflictError(f"{pending_id} was already decided ({pending.status.value})")
        action = decision.action
        if action is DecisionAction.APPROVE:
            details = validate_details(decision.details)
            return self._approve(pending, details, decision.actor)
        if action is DecisionAction.CONFIRM:
            if not pending.suggested_customer_id:
                raise ValidationError(f"{pending_id} has no suggested customer to confirm")
            return self._join(pending, pending.suggested_customer_id, decision.actor, action.value)
        if action is DecisionAction.MERGE:
            assert decision.customer_id
            return self._join(pending, decision.customer_id, decision.actor, action.value)
        if action is DecisionAction.REJECT:
            self._discard(pending, decision.actor, PendingStatus.REJECTED, "reject")
            return None
        if action is DecisionAction.NOT_A_CUSTOMER:
            self._suppress(pending, decision.actor)
            return None
        if action is DecisionAction.NOT_THIS_PERSON:
            self._to_new(pending, decision.actor)
            return None
        assert_never(action)

    def expire(self, pending_id: str, actor: str = "retention") -> None:
        """Retention: an undecided identity past its TTL is discarded."""
        pending = self.repos.pending.get(pending_id)
        if pending.status is PendingStatus.PENDING:
            self._discard(pending, actor, PendingStatus.EXPIRED, "expire")

    def _approve(self, pending: PendingIdentity, details: CustomerDetails, actor: str) -> str:
        customer = Customer.from_details(details)
        if customer.loyalty_id and self.repos.customers.find_by_loyalty_id(customer.loyalty_id):
            raise ConflictError(f"loyalty id {customer.loyalty_id} already belongs to a customer")
        self.repos.customers.add(customer)
        try:
            self._move_faces(pending, customer.customer_id, actor, "approve", {"consent": True})
        except BaseException:
            self.repos.customers.delete(customer.customer_id)
            raise
        return customer.customer_id

    def _join(self, pending: PendingIdentity, customer_id: str, actor: str, action: str) -> str:
        self.repos.customers.get(customer_id)
        self._move_faces(pending, customer_id, actor, action, {})
        return customer_id

    def _move_faces(
        self, pending: PendingIdentity, customer_id: str, actor: str, action: str, extra: dict[str, object]
    ) -> None:
        faces = self.faces_of(pending.pending_id)
        existing = self.repos.faces.count_templates(customer_id)
        budget = max(0, TEMPLATES_ON_APPROVAL - existing)
        # Re-index under the customer's opaque id (Rekognition cannot relabel a
        # face); the best-matching crops first, the rest stay as photos only.
        ordered = sorted(faces, key=lambda f: f.similarity or 0.0, reverse=True)
        new_ids: dict[str, str | None] = {}
        for face in ordered:
            new_ids[face.face_id] = None
            if budget > 0 and face.crop_key:
                try:
                    indexed = self.faces.index_face(
                        self.collection_id, self.blobs.get(face.crop_key), customer_id
                    )
                except (ValidationError, NotFoundError):
                    continue
                new_ids[face.face_id] = indexed.face_id
                budget -= 1
        old_index_ids = [f.index_face_id for f in faces if f.index_face_id]
        # Copy pending crops to their approved keys before the rows point there;
        # the old copies go only after the commit.
        moved: list[str] = []
        for face in faces:
            target = approved_key(face.crop_key) if face.crop_key else face.crop_key
            if target != face.crop_key:
                self.blobs.put(target, self.blobs.get(face.crop_key))
                moved.append(face.crop_key)
        now = utcnow()
        with self.repos.atomic():
            for face in sorted(faces, key=lambda f: f.captured_at):
                face.status = FaceStatus.CUSTOMER
                face.customer_id = customer_id
                face.index_face_id = new_ids.get(face.face_id)
                if face.crop_key:
                    face.crop_key = approved_key(face.crop_key)
                    if face.event_id:
                        self.repos.events.move_crop(face.event_id, face.crop_key)
                self.repos.faces.update(face)
                record_sighting(self.repos, self.settings, customer_id, face, face.similarity)
            self.repos.events.attribute_pending(pending.pending_id, customer_id)
            pending.status = PendingStatus.APPROVED if action == "approve" else PendingStatus.MERGED
            pending.customer_id = customer_id
            pending.decided_at = now
            pending.decided_by = actor
            self.repos.pending.update(pending)
            self._audit(
                actor, action, customer_id, {"pending_id": pending.pending_id, "faces": len(faces), **extra}
            )
        if old_index_ids:
            self.faces.delete_faces(self.collection_id, old_index_ids)
        for key in moved:
            self.blobs.delete(key)

    def _discard(self, pending: PendingIdentity, actor: str, status: PendingStatus, action: str) -> None:
        faces = self.faces_of(pending.pending_id)
        index_ids = [f.index_face_id for f in faces if f.index_face_id]
        if index_ids:
            self.faces.delete_faces(self.collection_id, index_ids)
        with self.repos.atomic():
            for face in faces:
                self.repos.faces.delete(face.face_id)
            self.repos.events.forget_pending(pending.pending_id)
            self.repos.tracks.forget(pending.pending_id)
            pending.status = status
            pending.decided_at = utcnow()
            pending.decided_by = actor
            pending.face_count = 0
            self.repos.pending.update(pending)
            self._audit(actor, action, pending.pending_id, {"faces_removed": len(faces)})
        self._delete_crops(faces)
        self.notifier.forget(pending.pending_id)

    def _suppress(self, pending: PendingIdentity, actor: str) -> None:
        faces = sorted(self.faces_of(pending.pending_id), key=lambda f: f.similarity or 0.0, reverse=True)
        keep, drop = faces[:SUPPRESSION_TEMPLATES], faces[SUPPRESSION_TEMPLATES:]
        drop_ids = [f.index_face_id for f in drop if f.index_face_id]
        if drop_ids:
            self.faces.delete_faces(self.collection_id, drop_ids)
        with self.repos.atomic():
            for face in keep:
                # The embedding stays in the index as a suppression template;
                # the photo itself is not kept.
                face.status = FaceStatus.SUPPRESSED
                face.crop_key = ""
                face.event_id = None
                self.repos.faces.update(face)
            for face in drop:
                self.repos.faces.delete(face.face_id)
            self.repos.events.forget_pending(pending.pending_id)
            self.repos.tracks.forget(pending.pending_id)
            pending.status = PendingStatus.NOT_A_CUSTOMER
            pending.decided_at = utcnow()
            pending.decided_by = actor
            self.repos.pending.update(pending)
            self._audit(actor, "not_a_customer", pending.pending_id, {"templates_kept": len(keep)})
        self._delete_crops(faces)
        self.notifier.forget(pending.pending_id)

    def _to_new(self, pending: PendingIdentity, actor: str) -> None:
        with self.repos.atomic():
            pending.kind = PendingKind.NEW
            pending.suggested_customer_id = None
            pending.suggested_similarity = None
            self.repos.pending.update(pending)
            self._audit(actor, "not_this_person", pending.pending_id, {})
        self.notify(pending.pending_id)

    def _delete_crops(self, faces: Sequence[Face]) -> None:
        for face in faces:
            if face.crop_key:
                self.blobs.delete(face.crop_key)

    def _audit(self, actor: str, action: str, subject_id: str, details: dict[str, object]) -> None:
        self.repos.audit.append(AuditEntry(new_id("aud"), utcnow(), actor, action, subject_id, dict(details)))


class ApprovalService:
    """Decisions on pending identities, for the dashboard, the CLI and e-mail links.

    Starting an approval and handing in a decision go through ``workflow``;
    the workflow then calls ``recorder`` back to do the work.
    """

    def __init__(self, *, recorder: DecisionRecorder, workflow: ApprovalWorkflow) -> None:
        self.recorder = recorder
        self.workflow = workflow
        self.settings = recorder.settings
        self.repos = recorder.repos

    @property
    def signer(self) -> TokenSigner:
        return self.recorder.signer

    # ----------------------------------------------------------------- queries
    def list_pending(self, kind: PendingKind | None = None) -> list[PendingIdentity]:
        """Undecided identities, most recently seen first."""
        items = self.repos.pending.list(PendingStatus.PENDING)
        return [p for p in items if kind is None or p.kind is kind]

    def get(self, pending_id: str) -> PendingIdentity:
        return self.repos.pending.get(pending_id)

    def faces_of(self, pending_id: str) -> list[Face]:
        return self.recorder.faces_of(pending_id)

    def request(self, pending: PendingIdentity) -> None:
        """Start the approval workflow for a newly opened pending identity."""
        self.workflow.start(pending)

    def links_for(self, pending: PendingIdentity) -> dict[str, str]:
        """One signed, single-use link per action offered for this kind."""
        return self.recorder.links_for(pending)

    # ---------------------------------------------------------------- deciding
    def decide(self, pending_id: str, decision: Decision) -> None:
        """Validate a decision and hand it to the workflow (which records it)."""
        pending = self.repos.pending.get(pending_id)
        if pending.status is not PendingStatus.PENDING:
            raise ConflictError(f"{pending_id} was already decided ({pending.status.value})")
        if decision.action is DecisionAction.APPROVE:
            decision = replace(decision, details=validate_details(decision.details))
        review_only = (DecisionAction.CONFIRM, DecisionAction.NOT_THIS_PERSON)
        if decision.action in review_only and pending.kind is not PendingKind.REVIEW:
            raise ValidationError(f"{decision.action.value!r} applies to possible returning customers only")
        if decision.action is DecisionAction.MERGE:
            if not decision.customer_id:
                raise ValidationError("merge needs the customer it is")
            self.repos.customers.get(decision.customer_id)
        self.workflow.submit(pending_id, decision)

    def verify_link(self, token: str) -> LinkClaims:
        """Check a link's signature and expiry without using it up."""
        claims = self.signer.verify(token)
        pending = self.repos.pending.get(claims.pending_id)
        if pending.status is not PendingStatus.PENDING:
            raise ConflictError(f"{claims.pending_id} was already decided ({pending.status.value})")
        return claims

    def decide_with_token(self, token: str, decision: Decision) -> LinkClaims:
        """Decide through an e-mail link: the token must grant this action, once."""
        claims = self.signer.verify(token)
        if claims.action != decision.action:
            raise ValidationError(f"this link is for {claims.action!r}, not {decision.action.value!r}")
        if decision.action is DecisionAction.APPROVE:
            decision = replace(decision, details=validate_details(decision.details))
        # Use the token up only once the request is otherwise valid, so a typo
        # in the form does not burn the link; a reused link says so first.
        self.signer.consume(token, self.repos.tokens)
        self.decide(claims.pending_id, decision)
        return claims

    # -------------------------------------------- the workflow's callbacks
    def notify(self, pending_id: str) -> str:
        """Send the approval e-mail (see :meth:`DecisionRecorder.notify`)."""
        return self.recorder.notify(pending_id)

    def record_decision(self, pending_id: str, decision: Decision) -> str | None:
        """Carry out a decision (see :meth:`DecisionRecorder.record_decision`)."""
        return self.recorder.record_decision(pending_id, decision)

    def expire(self, pending_id: str, actor: str = "retention") -> None:
        """Discard an undecided identity (see :meth:`DecisionRecorder.expire`)."""
        self.recorder.expire(pending_id, actor)
