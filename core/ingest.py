"""Ingest: one FaceEvent in, one decision out, nothing accepted ever lost.

validate -> dedupe on ``event_id`` -> recognise -> store the crop -> record
(one transaction) -> visit / review / pending. Bad input is written to the
dead-letter log with its reason and the typed error is raised again.

Order matters for durability: the crop file is written (and fsynced) before
the rows that point at it are committed, and the event row that makes a
redelivery a duplicate is committed in the same transaction as everything the
event caused. A crash at any point leaves either nothing (the publisher
redelivers) or everything.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.crop_keys import crop_key_for
from core.errors import StoreLensError, ValidationError
from core.models import (
    Band,
    DeadLetter,
    FaceEvent,
    FaceStatus,
    IngestOutcome,
    IngestResult,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    face_from_event,
    new_id,
    utcnow,
)
from core.ports import BlobStore, Repositories
from core.recognition import Recognition, RecognitionPolicy
from core.schema import event_to_json, parse_event
from core.settings import Settings
from core.sightings import record_sighting

if TYPE_CHECKING:
    from core.approvals import ApprovalService

#: A matched customer's face is added to their templates until they have this
#: many; more adds search cost without adding much new appearance.
MAX_TEMPLATES_PER_CUSTOMER = 12


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
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.recognition = recognition
        self.approvals = approvals
        # Recognise-then-write must not interleave: two sightings of the same
        # unknown person at once would otherwise open two pending identities.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ entry
    def ingest(self, payload: bytes | str | dict[str, Any] | FaceEvent, source: str = "api") -> IngestResult:
        """Validate and process one event; raise a ``ValidationError`` for bad input."""
        event = self._validate(payload, source)
        self._embed_ahead(event.crop_jpeg)
        failure: ValidationError | None = None
        new_pending: PendingIdentity | None = None
        # One write transaction (BEGIN IMMEDIATE on SQLite) around dedupe ->
        # search -> decide -> write: it is the decision lock across every
        # process on the data dir, so a duplicate or a second sighting of the
        # same unknown person always sees the first one's rows.
        with self._lock, self.repos.atomic():
            if self.repos.events.is_processed(event.event_id):
                return IngestResult(event.event_id, IngestOutcome.DUPLICATE)
            try:
                verdict = self.recognition.recognise(event.crop_jpeg)
            except ValidationError as exc:
                failure = exc
            else:
                if verdict.suppressed:
                    return self._suppressed(event, verdict)
                crop_key = crop_key_for(event, pending=verdict.band is not Band.MATCH)
                self.blobs.put(crop_key, event.crop_jpeg)
                if verdict.band is Band.MATCH:
                    return self._visit(event, verdict, crop_key)
                result, new_pending = self._pending(event, verdict, crop_key)
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

    def _embed_ahead(self, image: bytes) -> None:
        # Embedding is the slow part; doing it before taking the write lock
        # (the local index caches it by content) keeps the lock short.
        embed = getattr(self.recognition.faces, "embed_image", None)
        if embed is not None:
            with suppress(StoreLensError):
                embed(image)  # a bad crop fails again, inside, with its dead letter

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
                payload=raw[: self.settings.max_crop_bytes * 2],
            )
        )

    def _suppressed(self, event: FaceEvent, verdict: Recognition) -> IngestResult:
        # Do-not-track: the crop is never written; only the fact that an event
        # arrived is kept so the event id stays deduplicated.
        self.repos.events.record(event, None, IngestOutcome.SUPPRESSED.value, None, None, None)
        return IngestResult(event.event_id, IngestOutcome.SUPPRESSED, similarity=verdict.similarity)

    def _visit(self, event: FaceEvent, verdict: Recognition, crop_key: str) -> IngestResult:
        customer_id = verdict.customer_id
        assert customer_id is not None
        index_face_id = None
        if self.repos.faces.count_templates(customer_id) < MAX_TEMPLATES_PER_CUSTOMER:
            index_face_id = self.recognition.faces.index_face(
                self.recognition.collection_id, event.crop_jpeg, customer_id
            ).face_id
        face = face_from_event(
            event,
            crop_key,
            FaceStatus.CUSTOMER,
            index_face_id=index_face_id,
            customer_id=customer_id,
            similarity=verdict.similarity,
        )
        try:
            with self.repos.atomic():
                self.repos.faces.add(face)
                record_sighting(self.repos, self.settings, customer_id, event, verdict.similarity)
                self.repos.events.record(
                    event, crop_key, IngestOutcome.VISIT.value, customer_id, None, verdict.similarity
                )
        except BaseException:
            self._undo_index(index_face_id)
            raise
        return IngestResult(
            event.event_id,
            IngestOutcome.VISIT,
            customer_id=customer_id,
            similarity=verdict.similarity,
            face_id=face.face_id,
        )

    def _pending(
        self, event: FaceEvent, verdict: Recognition, crop_key: str
    ) -> tuple[IngestResult, PendingIdentity | None]:
        now = utcnow()
        created: PendingIdentity | None = None
        if verdict.pending_id:
            pending = self.repos.pending.get(verdict.pending_id)
        else:
            review = verdict.band is Band.REVIEW
            created = pending = PendingIdentity(
                pending_id=new_id("pid"),
                kind=PendingKind.REVIEW if review else PendingKind.NEW,
                status=PendingStatus.PENDING,
                created_at=now,
                last_seen_at=event.captured_at,
                expires_at=now + timedelta(days=self.settings.pending_ttl_days),
                store_id=event.store_id,
                suggested_customer_id=verdict.customer_id if review else None,
                suggested_similarity=verdict.similarity if review else None,
            )
        indexed = self.recognition.faces.index_face(
            self.recognition.collection_id, event.crop_jpeg, pending.pending_id
        )
        face = face_from_event(
            event,
            crop_key,
            FaceStatus.PENDING,
            index_face_id=indexed.face_id,
            pending_id=pending.pending_id,
            similarity=verdict.similarity,
        )
        outcome = IngestOutcome.REVIEW if pending.kind is PendingKind.REVIEW else IngestOutcome.PENDING
        try:
            with self.repos.atomic():
                pending.face_count += 1
                pending.last_seen_at = max(pending.last_seen_at, event.captured_at)
                if created is not None:
                    self.repos.pending.add(pending)
                else:
                    self.repos.pending.update(pending)
                self.repos.faces.add(face)
                self.repos.events.record(
                    event,
                    crop_key,
                    outcome.value,
                    pending.suggested_customer_id,
                    pending.pending_id,
                    verdict.similarity,
                )
        except BaseException:
            self._undo_index(indexed.face_id)
            raise
        result = IngestResult(
            event.event_id,
            outcome,
            customer_id=pending.suggested_customer_id,
            pending_id=pending.pending_id,
            similarity=verdict.similarity,
            face_id=face.face_id,
        )
        return result, created

    def _undo_index(self, index_face_id: str | None) -> None:
        if index_face_id:
            self.recognition.faces.delete_faces(self.recognition.collection_id, [index_face_id])


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
