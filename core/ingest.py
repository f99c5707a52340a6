"""Ingest: one FaceEvent in, one decision out, nothing accepted ever lost.

validate -> dedupe on ``event_id`` -> recognise the person from all the
event's crops -> follow the track's earlier decision, if any -> store the
crops -> record (one transaction) -> visit / review / pending. Bad input is
written to the dead-letter log with its reason and the typed error is raised
again.

One track, one identity: the first event of a ``(store, camera, track_id)``
stores a :class:`~core.models.TrackLink` to the owner it decided (a customer
or a pending identity); later events of that track within
``visit_gap_seconds`` join that owner whatever their own crops score, so a
person walking past is never split in two and a decision never flip-flops.
Only do-not-track overrides a link. A link to a pending identity that has
since been approved or merged leads to the customer it became; one that was
rejected, expired or erased is dropped and the event decides afresh.

Order matters for durability: the crop file is written (and fsynced) before
the rows that point at it are committed, and the event row that makes a
redelivery a duplicate is committed in the same transaction as everything the
event caused. A crash at any point leaves either nothing (the publisher
redelivers) or everything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.consent import dead_letter_payload, discards, record_anonymous
from core.crop_keys import crop_key_for
from core.errors import NotFoundError, StoreLensError, ValidationError
from core.models import (
    Band,
    DeadLetter,
    Face,
    FaceCrop,
    FaceEvent,
    FaceStatus,
    IngestOutcome,
    IngestResult,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    TrackLink,
    face_from_event,
    new_id,
    utcnow,
)
from core.ports import BlobStore, Decision, DecisionAction, FaceEmbedder, Repositories
from core.recognition import Recognition, RecognitionPolicy
from core.schema import event_to_json, parse_event
from core.settings import Settings
from core.sightings import record_sighting

if TYPE_CHECKING:
    from core.approvals import ApprovalService

#: A matched customer's face is added to their templates until they have this
#: many; more adds search cost without adding much new appearance.
MAX_TEMPLATES_PER_CUSTOMER = 12
#: Who the audit log names when a waiting track's later crops recognise a customer.
TRACK_EVIDENCE_ACTOR = "system:track-evidence"


class IngestService:
    """Accepts FaceEvents from any transport. Safe to call from many threads."""

    def __init__(
        self,
        *,
        settings: Settings,
        repos: Repositories,
        blobs: BlobStore,
        recognition: RecognitionPolicy,
        approvals: ApprovalService,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.recognition = recognition
        self.approvals = approvals
        self.embedder = embedder
        # Recognise-then-write must not interleave: two sightings of the same
        # unknown person at once would otherwise open two pending identities.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ entry
    def ingest(self, payload: bytes | str | dict[str, Any] | FaceEvent, source: str = "api") -> IngestResult:
        """Validate and process one event; raise a ``ValidationError`` for bad input."""
        event = self._validate(payload, source)
        if event.is_anonymous:
            # The edge could not match this person to a consented customer and sent no
            # face (docs/edge.md, ``unmatched = "anonymous"``): count them, in any mode.
            with self._lock, self.repos.atomic():
                if self.repos.events.is_processed(event.event_id):
                    return IngestResult(event.event_id, IngestOutcome.DUPLICATE)
                return record_anonymous(self.repos, event)
        self._embed_ahead(event)
        failure: ValidationError | None = None
        new_pending: PendingIdentity | None = None
        # One write transaction (BEGIN IMMEDIATE on SQLite) around dedupe ->
        # search -> decide -> write: it is the decision lock across every
        # process on the data dir, so a duplicate or a second sighting of the
        # same unknown person (or track) always sees the first one's rows.
        with self._lock, self.repos.atomic():
            if self.repos.events.is_processed(event.event_id):
                return IngestResult(event.event_id, IngestOutcome.DUPLICATE)
            crops = event.all_crops
            try:
                verdict = self.recognition.recognise_crops(crops, detector=event.detector)
            except ValidationError as exc:
                failure = exc
            else:
                if verdict.suppressed:
                    return self._suppressed(event, verdict)
                result, new_pending = self._decide(event, verdict)
        if failure is not None:
            # After the transaction, so the dead letter is not rolled back with it.
            self._dead_letter(event_to_json(event), source, failure, event.event_id)
            raise failure
        if new_pending is not None:
            # After commit and outside the lock: the e-mail and workflow may be
            # slow, and they must happen once, for a pending identity that exists.
            self.approvals.request(new_pending)
        return result

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self.repos.events.dead_letters(limit)

    # --------------------------------------------------------------- internals
    def _validate(self, payload: bytes | str | dict[str, Any] | FaceEvent, source: str) -> FaceEvent:
        s = self.settings
        try:
            # In-process events round-trip so they meet exactly the wire rules.
            wire = event_to_json(payload) if isinstance(payload, FaceEvent) else payload
            return parse_event(
                wire,
                max_crop_bytes=s.max_crop_bytes,
                min_face_px=s.min_face_px,
                max_image_pixels=s.max_image_pixels,
            )
        except ValidationError as exc:
            self._dead_letter(_raw_for_letter(payload), source, exc, _guess_event_id(payload))
            raise

    def _embed_ahead(self, event: FaceEvent) -> None:
        # Embedding is the slow part; doing it before taking the write lock
        # (the local index caches it by content) keeps the lock short.
        if self.embedder is not None:
            with suppress(StoreLensError):
                self.embedder.embed_crops(event.all_crops, detector=event.detector)  # fails again, inside

    def _decide(self, event: FaceEvent, verdict: Recognition) -> tuple[IngestResult, PendingIdentity | None]:
        """Follow the track's owner, or the verdict; return the result and any new pending identity."""
        link = self._track_link(event)
        if link is not None and link.customer_id:
            return self._visit(event, verdict, link.customer_id, link), None
        if discards(self.settings, verdict):  # consent-first: not a consented customer
            return record_anonymous(self.repos, event), None
        if link is not None and link.pending_id:
            customer_id = self._recognised_later(verdict, link.pending_id)
            if customer_id is not None:
                joined = replace(link, customer_id=customer_id, pending_id=None)
                return self._visit(event, verdict, customer_id, joined), None
            return self._pending(event, verdict, link.pending_id, link)
        if verdict.band is Band.MATCH:
            assert verdict.customer_id is not None
            return self._visit(event, verdict, verdict.customer_id, None), None
        if verdict.pending_id:
            return self._pending(event, verdict, verdict.pending_id, None)
        # A new identity: claim the track for it first (insert-if-absent), so two
        # processes deciding one track at once make one identity (DynamoDB has no
        # decision lock; SQLite's transaction makes this a formality).
        fresh = new_id("pid")
        first, last = _crop_times(event.all_crops)
        claim = TrackLink(event.store_id, event.camera_id, event.track_id, None, fresh, first, last)
        stored = self.repos.tracks.claim(claim)
        winner = self._resolve(event, stored) if stored != claim else None
        if winner is not None and winner.customer_id:
            return self._visit(event, verdict, winner.customer_id, winner), None
        if winner is not None and winner.pending_id:
            return self._pending(event, verdict, winner.pending_id, winner)
        # Should the writes fail, the claim names an identity that does not
        # exist: the next event of the track finds it stale and replaces it.
        return self._pending(event, verdict, None, None, new_pending_id=fresh)

    def _recognised_later(self, verdict: Recognition, pending_id: str) -> str | None:
        """A waiting track whose later crops match a customer becomes that customer.

        The edge sends a track's first crops early, while the person is still
        far away and small; the larger faces of a later event are the better
        evidence. When they reach the match band for a customer while the
        track's identity still awaits a decision (nobody has decided it), the
        identity is merged into that customer -- what the first event would
        have done with these crops -- and audited as the system's decision.
        Upgrade only: a track never moves from one customer to another.
        Returns the customer's id, or ``None`` to keep waiting.
        """
        if verdict.band is not Band.MATCH or not verdict.customer_id:
            return None
        # _track_link only hands out links whose identity is still pending.
        decision = Decision(DecisionAction.MERGE, TRACK_EVIDENCE_ACTOR, customer_id=verdict.customer_id)
        self.approvals.record_decision(pending_id, decision)
        return verdict.customer_id

    def _dead_letter(self, raw: bytes, source: str, exc: StoreLensError, event_id: str | None) -> None:
        self.repos.events.add_dead_letter(
            DeadLetter(
                dead_letter_id=new_id("dlq"),
                received_at=utcnow(),
                source=source,
                reason=str(exc),
                error_type=type(exc).__name__,
                event_id=event_id,
                # Keep what is needed to diagnose, bounded so a flood cannot fill the disk.
                payload=dead_letter_payload(self.settings, raw, self.settings.max_crop_bytes * 2),
            )
        )

    def _track_link(self, event: FaceEvent) -> TrackLink | None:
        """The live owner of the event's track, or ``None`` when the event decides afresh.

        The returned link names a customer that exists or a pending identity
        still awaiting its decision (an approved or merged one is followed to
        its customer).
        """
        return self._resolve(event, self.repos.tracks.get(event.store_id, event.camera_id, event.track_id))

    def _resolve(self, event: FaceEvent, link: TrackLink | None) -> TrackLink | None:
        if link is None:
            return None
        first, last = _crop_times(event.all_crops)
        gap = timedelta(seconds=self.settings.visit_gap_seconds)
        # Track ids are only unique per edge run: a long-quiet track is someone new.
        if first > link.last_seen_at + gap or last < link.first_seen_at - gap:
            return None
        try:
            if link.pending_id:
                pending = self.repos.pending.get(link.pending_id)
                if pending.status is PendingStatus.PENDING:
                    return link
                if pending.customer_id and pending.status in (PendingStatus.APPROVED, PendingStatus.MERGED):
                    self.repos.customers.get(pending.customer_id)
                    return replace(link, customer_id=pending.customer_id, pending_id=None)
                return None
            if link.customer_id:
                self.repos.customers.get(link.customer_id)
                return link
        except NotFoundError:
            return None  # erased, or a write interrupted after the link was claimed
        return None

    def _store_link(
        self,
        event: FaceEvent,
        previous: TrackLink | None,
        *,
        customer_id: str | None = None,
        pending_id: str | None = None,
    ) -> None:
        """Record (or move forward) the track's owner; inside the caller's transaction."""
        first, last = _crop_times(event.all_crops)
        if previous is not None:
            self.repos.tracks.put(
                replace(
                    previous,
                    customer_id=customer_id,
                    pending_id=pending_id,
                    first_seen_at=min(previous.first_seen_at, first),
                    last_seen_at=max(previous.last_seen_at, last),
                )
            )
            return
        link = TrackLink(
            event.store_id, event.camera_id, event.track_id, customer_id, pending_id, first, last
        )
        # A stale link (an expired owner, a track id reused much later) is replaced.
        self.repos.tracks.put(link)

    def _suppressed(self, event: FaceEvent, verdict: Recognition) -> IngestResult:
        # Do-not-track: the crop is never written; only the fact that an event
        # arrived is kept so the event id stays deduplicated.
        self.repos.events.record(event, None, IngestOutcome.SUPPRESSED.value, None, None, None)
        return IngestResult(event.event_id, IngestOutcome.SUPPRESSED, similarity=verdict.similarity)

    def _put_crops(self, event: FaceEvent, *, pending: bool) -> list[str]:
        """Write every crop (before the rows that point at them); return their keys."""
        keys = []
        for i, crop in enumerate(event.all_crops):
            key = crop_key_for(event, pending=pending, index=i)
            self.blobs.put(key, crop.jpeg)
            keys.append(key)
        return keys

    def _faces(
        self,
        event: FaceEvent,
        keys: Sequence[str],
        indexed: Sequence[str | None],
        status: FaceStatus,
        similarity: float | None,
        **owner: str,
    ) -> list[Face]:
        """One stored face per crop (index ids align with crops; ``None``: not a template)."""
        faces = []
        for i, crop in enumerate(event.all_crops):
            face = face_from_event(
                event,
                keys[i],
                status,
                index_face_id=indexed[i] if i < len(indexed) else None,
                similarity=similarity,
                **owner,
            )
            face.captured_at = crop.captured_at
            faces.append(face)
        return faces

    def _visit(
        self, event: FaceEvent, verdict: Recognition, customer_id: str, link: TrackLink | None
    ) -> IngestResult:
        # Joining the track's customer: report that customer's own combined
        # score for these crops when the search saw them at all.
        similarity = verdict.similarity if verdict.customer_id == customer_id else None
        for cand in verdict.candidates:
            if cand.owner_id == customer_id:
                similarity = cand.similarity
        crops = event.all_crops
        budget = max(0, MAX_TEMPLATES_PER_CUSTOMER - self.repos.faces.count_templates(customer_id))
        index_ids: list[str | None] = []
        if budget:
            # The best crops first (the edge sends them best first).
            indexed = self.recognition.faces.index_crops(
                self.recognition.collection_id, crops[:budget], customer_id, detector=event.detector
            )
            index_ids = [f.face_id if f else None for f in indexed]
        keys = self._put_crops(event, pending=False)
        faces = self._faces(event, keys, index_ids, FaceStatus.CUSTOMER, similarity, customer_id=customer_id)
        first, last = _crop_times(crops)
        try:
            with self.repos.atomic():
                for face in faces:
                    self.repos.faces.add(face)
                # The crops span the person's time in view: the visit does too.
                record_sighting(
                    self.repos, self.settings, customer_id, replace(event, captured_at=first), similarity
                )
                if last > first:
                    record_sighting(
                        self.repos, self.settings, customer_id, replace(event, captured_at=last), similarity
                    )
                self._store_link(event, link, customer_id=customer_id)
                self.repos.events.record(
                    event, keys[0], IngestOutcome.VISIT.value, customer_id, None, similarity
                )
        except BaseException:
            self._undo_index(index_ids)
            raise
        return IngestResult(
            event.event_id,
            IngestOutcome.VISIT,
            customer_id=customer_id,
            similarity=similarity,
            face_id=faces[0].face_id,
        )

    def _pending(
        self,
        event: FaceEvent,
        verdict: Recognition,
        pending_id: str | None,
        link: TrackLink | None,
        *,
        new_pending_id: str | None = None,
    ) -> tuple[IngestResult, PendingIdentity | None]:
        """Join ``pending_id`` or, when it is ``None``, open a new pending identity."""
        now = utcnow()
        created: PendingIdentity | None = None
        crops = event.all_crops
        _first, last = _crop_times(crops)
        if pending_id:
            pending = self.repos.pending.get(pending_id)
        else:
            review = verdict.band is Band.REVIEW
            created = pending = PendingIdentity(
                pending_id=new_pending_id or new_id("pid"),
                kind=PendingKind.REVIEW if review else PendingKind.NEW,
                status=PendingStatus.PENDING,
                created_at=now,
                last_seen_at=last,
                expires_at=now + timedelta(days=self.settings.pending_ttl_days),
                store_id=event.store_id,
                suggested_customer_id=verdict.customer_id if review else None,
                suggested_similarity=verdict.similarity if review else None,
            )
        indexed = self.recognition.faces.index_crops(
            self.recognition.collection_id, crops, pending.pending_id, detector=event.detector
        )
        index_ids = [f.face_id if f else None for f in indexed]
        keys = self._put_crops(event, pending=True)
        faces = self._faces(
            event, keys, index_ids, FaceStatus.PENDING, verdict.similarity, pending_id=pending.pending_id
        )
        outcome = IngestOutcome.REVIEW if pending.kind is PendingKind.REVIEW else IngestOutcome.PENDING
        try:
            with self.repos.atomic():
                pending.face_count += len(faces)
                pending.last_seen_at = max(pending.last_seen_at, last)
                if created is not None:
                    self.repos.pending.add(pending)
                else:
                    self.repos.pending.update(pending)
                for face in faces:
                    self.repos.faces.add(face)
                self._store_link(event, link, pending_id=pending.pending_id)
                self.repos.events.record(
                    event,
                    keys[0],
                    outcome.value,
                    pending.suggested_customer_id,
                    pending.pending_id,
                    verdict.similarity,
                )
        except BaseException:
            self._undo_index(index_ids)
            raise
        result = IngestResult(
            event.event_id,
            outcome,
            customer_id=pending.suggested_customer_id,
            pending_id=pending.pending_id,
            similarity=verdict.similarity,
            face_id=faces[0].face_id,
        )
        return result, created

    def _undo_index(self, index_face_ids: Sequence[str | None]) -> None:
        ids = [i for i in index_face_ids if i]
        if ids:
            self.recognition.faces.delete_faces(self.recognition.collection_id, ids)


def _crop_times(crops: Sequence[FaceCrop]) -> tuple[datetime, datetime]:
    """The earliest and latest capture time of an event's crops."""
    times = [c.captured_at for c in crops]
    return min(times), max(times)


def _raw_for_letter(payload: object) -> bytes:
    """What a dead letter keeps of a refused input (never failing itself)."""
    try:
        if isinstance(payload, bytes):
            return payload
        if isinstance(payload, FaceEvent):
            return repr(replace(payload, crop_jpeg=b"", crops=())).encode()
        return str(payload).encode("utf-8", "replace")
    except (ValueError, TypeError, RecursionError):  # 5000-digit ints, 50k-deep nesting
        return f"<unprintable {type(payload).__name__}>".encode()


def _guess_event_id(payload: object) -> str | None:
    if isinstance(payload, FaceEvent):
        return payload.event_id
    if isinstance(payload, dict):
        value = payload.get("event_id")
        return value if isinstance(value, str) else None
    return None


__all__ = ["IngestService"]
