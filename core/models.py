"""Domain models: plain dataclasses shared by every backend.

Conventions that hold everywhere (convert only at adapter edges):

* **Bounding boxes** are :class:`BoundingBox` in integer *pixels* of the image
  they were found in: ``left``, ``top`` (inclusive) and ``width``, ``height``.
  Rekognition ratios, dlib rectangles and SSD corner ratios are converted by
  private helpers inside the adapter that meets them.
* **Scores** are *similarities* in ``[0.0, 1.0]``, higher meaning more alike.
  The local engine maps Euclidean distance ``d`` to ``1 - d`` (clipped);
  Rekognition maps its 0-100 similarity through a calibration in its adapter.
  The recognition policy only ever sees this one scale.
* **Times** are timezone-aware UTC ``datetime`` objects.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (second resolution is not assumed)."""
    return datetime.now(UTC)


def to_stored_time(value: datetime | None) -> str | None:
    """Fixed-width UTC text, the form both stores keep: text order is time order.

    Naive datetimes are refused: they are bugs, not local times.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime passed to the store")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_stored_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def new_id(prefix: str) -> str:
    """An opaque identifier such as ``cus_3f2a...``; never derived from a name."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A face rectangle in integer pixels of the image it belongs to.

    >>> BoundingBox(10, 20, 100, 120).right
    110
    """

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.width / 2.0, self.top + self.height / 2.0)

    def iou(self, other: BoundingBox) -> float:
        """Intersection over union with another box (0.0 when disjoint)."""
        ix = max(0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clip(self, width: int, height: int) -> BoundingBox:
        """This box clipped to an image of ``width`` x ``height`` pixels."""
        left = min(max(0, self.left), width)
        top = min(max(0, self.top), height)
        right = min(max(0, self.right), width)
        bottom = min(max(0, self.bottom), height)
        return BoundingBox(left, top, right - left, bottom - top)

    def expand(self, margin: float) -> BoundingBox:
        """Grow by ``margin`` (a fraction of the size) on every side."""
        dx = round(self.width * margin)
        dy = round(self.height * margin)
        return BoundingBox(self.left - dx, self.top - dy, self.width + 2 * dx, self.height + 2 * dy)

    def to_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoundingBox:
        return cls(int(data["left"]), int(data["top"]), int(data["width"]), int(data["height"]))


#: Margin around a detected face in every crop StoreLens makes or expects, as a
#: fraction of the face's size on each side. It is the edge agent's value (its
#: crops are what the backend sees most): enough forehead, chin and ears for the
#: embedder to re-detect and align the face in the crop. Enrolment photos are
#: cropped the same way so templates and sightings look alike, and the local
#: engine assumes it when it must take a crop's centre as the face.
CROP_MARGIN = 0.35


def distance_to_similarity(distance: float) -> float:
    """The common 0..1 similarity of a Euclidean template distance: ``clip(1 - d, 0, 1)``.

    >>> round(distance_to_similarity(0.35), 2)
    0.65
    """
    return float(min(1.0, max(0.0, 1.0 - float(distance))))


def similarity_to_distance(similarity: float) -> float:
    """Inverse of :func:`distance_to_similarity` (a similarity of 0 maps to distance 1).

    >>> similarity_to_distance(0.55)
    0.45
    """
    return float(round(1.0 - min(1.0, max(0.0, float(similarity))), 12))


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """One face image of a track, as the edge cut it from a frame.

    ``bbox`` is the face in *frame* pixels; ``face`` is the same face in the
    pixels of ``jpeg`` (the crop has a margin and may be downscaled), so the
    backend can align it without detecting again. ``landmarks`` are the
    detector's five points in crop pixels when it has them (YuNet order: right
    eye, left eye, nose tip, right and left mouth corner, as seen in the image).
    ``quality`` is the edge's 0..1 crop score (size, sharpness, frontalness).
    """

    jpeg: bytes
    bbox: BoundingBox
    face: BoundingBox | None
    captured_at: datetime
    confidence: float
    quality: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True, slots=True)
class FaceEvent:
    """The face crops of one tracked person, as published by an edge agent.

    Schema v2 carries up to :data:`MAX_CROPS_PER_EVENT` crops of one track in
    ``crops``, best first; the flat fields (``captured_at``, ``bbox``,
    ``confidence``, ``crop_jpeg``) are those of the best crop, so code that only
    needs one face reads them. A schema v1 event has one crop and an empty
    ``crops``; :attr:`all_crops` gives every event's crops the same way.
    Build v2 events with :meth:`from_crops`. See ``docs/face-event.md`` for the
    JSON form; :mod:`core.schema` parses and validates it.
    """

    event_id: str
    store_id: str
    camera_id: str
    zone: str
    captured_at: datetime
    bbox: BoundingBox
    frame_width: int
    frame_height: int
    detector: str
    confidence: float
    track_id: str
    crop_jpeg: bytes
    schema_version: int = 1
    crops: tuple[FaceCrop, ...] = ()
    #: Only on an *anonymous sighting* event (:meth:`anonymous`): when the track was
    #: last seen (``captured_at`` is when it was first seen). Such an event has no crop.
    seen_until: datetime | None = None

    @classmethod
    def anonymous(
        cls,
        *,
        event_id: str,
        store_id: str,
        camera_id: str,
        zone: str,
        frame_width: int,
        frame_height: int,
        detector: str,
        track_id: str,
        first_seen_at: datetime,
        last_seen_at: datetime,
    ) -> FaceEvent:
        """A sighting of a tracked person the edge could not match to a consented
        customer: where and when only, no crop, no template (``docs/face-event.md``)."""
        return cls(
            event_id=event_id,
            store_id=store_id,
            camera_id=camera_id,
            zone=zone,
            captured_at=first_seen_at,
            bbox=BoundingBox(0, 0, 0, 0),
            frame_width=frame_width,
            frame_height=frame_height,
            detector=detector,
            confidence=0.0,
            track_id=track_id,
            crop_jpeg=b"",
            schema_version=2,
            seen_until=max(first_seen_at, last_seen_at),
        )

    @property
    def is_anonymous(self) -> bool:
        """An anonymous sighting (no face at all), see :meth:`anonymous`."""
        return self.seen_until is not None and not self.crops

    @classmethod
    def from_crops(
        cls,
        *,
        event_id: str,
        store_id: str,
        camera_id: str,
        zone: str,
        frame_width: int,
        frame_height: int,
        detector: str,
        track_id: str,
        crops: tuple[FaceCrop, ...] | list[FaceCrop],
    ) -> FaceEvent:
        """A schema-v2 event; ``crops`` best first (the flat fields come from ``crops[0]``)."""
        if not crops:
            raise ValueError("a FaceEvent needs at least one crop")
        best = crops[0]
        return cls(
            event_id=event_id,
            store_id=store_id,
            camera_id=camera_id,
            zone=zone,
            captured_at=best.captured_at,
            bbox=best.bbox,
            frame_width=frame_width,
            frame_height=frame_height,
            detector=detector,
            confidence=best.confidence,
            track_id=track_id,
            crop_jpeg=best.jpeg,
            schema_version=2,
            crops=tuple(crops),
        )

    @property
    def all_crops(self) -> tuple[FaceCrop, ...]:
        """Every crop of the event, best first (a v1 event's single crop included)."""
        if self.crops:
            return self.crops
        if self.is_anonymous:
            return ()
        return (FaceCrop(self.crop_jpeg, self.bbox, None, self.captured_at, self.confidence),)


#: The most crops one event may carry (the edge sends the K best of a track, K <= this).
MAX_CROPS_PER_EVENT = 10


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """A face found in an image by a detector, with the detector's confidence."""

    bbox: BoundingBox
    confidence: float
    #: Five facial points in the same image's pixels when the detector gives them
    #: (YuNet order: right eye, left eye, nose tip, right and left mouth corner).
    landmarks: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True, slots=True)
class IndexedFace:
    """A face stored in a face collection under an opaque external id."""

    face_id: str
    external_id: str
    bbox: BoundingBox | None = None
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class FaceMatch:
    """A search hit: an indexed face and how similar it is (0..1)."""

    face_id: str
    external_id: str
    similarity: float


class Band(enum.StrEnum):
    """The recognition policy's decision for one face."""

    MATCH = "match"
    REVIEW = "review"
    NEW = "new"


class FaceStatus(enum.StrEnum):
    PENDING = "pending"  # belongs to a pending identity awaiting approval
    CUSTOMER = "customer"  # belongs to an approved customer
    SUPPRESSED = "suppressed"  # do-not-track: kept only as a suppression template


@dataclass(slots=True)
class Face:
    """A stored face crop and who it belongs to.

    ``index_face_id`` is the id in the face collection (local index or
    Rekognition). Exactly one of ``customer_id`` / ``pending_id`` is set, except
    for suppressed faces.
    """

    face_id: str
    event_id: str | None
    crop_key: str
    captured_at: datetime
    camera_id: str
    zone: str
    status: FaceStatus
    index_face_id: str | None = None
    customer_id: str | None = None
    pending_id: str | None = None
    similarity: float | None = None


def face_from_event(event: FaceEvent, crop_key: str, status: FaceStatus, **owner: Any) -> Face:
    """The stored Face for an ingested event; ``owner`` sets ids and similarity."""
    return Face(
        face_id=new_id("fac"),
        event_id=event.event_id,
        crop_key=crop_key,
        captured_at=event.captured_at,
        camera_id=event.camera_id,
        zone=event.zone,
        status=status,
        **owner,
    )


@dataclass(slots=True)
class Customer:
    """An approved, consenting customer. ``customer_id`` is opaque."""

    customer_id: str
    name: str
    email: str | None = None
    loyalty_id: str | None = None
    consent: bool = False
    consent_at: datetime | None = None
    notes: str = ""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @classmethod
    def from_details(cls, details: CustomerDetails, now: datetime | None = None) -> Customer:
        """A new customer from validated details; consent is recorded at ``now``."""
        now = now or utcnow()
        return cls(
            customer_id=new_id("cus"),
            name=details.name,
            email=details.email,
            loyalty_id=details.loyalty_id,
            consent=True,
            consent_at=now,
            notes=details.notes,
            created_at=now,
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class Visit:
    """A customer seen by a camera. Dwell is ``last_seen_at - started_at``."""

    visit_id: str
    customer_id: str
    store_id: str
    camera_id: str
    zone: str
    started_at: datetime
    last_seen_at: datetime
    event_id: str | None = None
    similarity: float | None = None

    @property
    def dwell_seconds(self) -> float:
        return max(0.0, (self.last_seen_at - self.started_at).total_seconds())


class PendingKind(enum.StrEnum):
    NEW = "new"  # nobody known: approve as a new customer or reject
    REVIEW = "review"  # possible returning customer: confirm or "not this person"


class PendingStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    NOT_A_CUSTOMER = "not_a_customer"
    MERGED = "merged"  # confirmed as / merged into an existing customer
    EXPIRED = "expired"


@dataclass(slots=True)
class PendingIdentity:
    """An unknown person awaiting one human decision, with all their faces."""

    pending_id: str
    kind: PendingKind
    status: PendingStatus
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    store_id: str
    face_count: int = 0
    suggested_customer_id: str | None = None
    suggested_similarity: float | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerDetails:
    """What the approver fills in; ``consent`` must be explicit."""

    name: str
    email: str | None = None
    loyalty_id: str | None = None
    consent: bool = False
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Transaction:
    """A point-of-sale transaction; ``amount_cents`` avoids float money."""

    transaction_id: str
    store_id: str
    occurred_at: datetime
    amount_cents: int
    currency: str = "EUR"
    loyalty_id: str | None = None
    customer_id: str | None = None
    camera_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to whom, when. Details never contain face images."""

    audit_id: str
    at: datetime
    actor: str
    action: str
    subject_id: str
    details: dict[str, Any] = field(default_factory=dict)


class IngestOutcome(enum.StrEnum):
    VISIT = "visit"
    REVIEW = "review"
    PENDING = "pending"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"
    #: consent-first mode: not a consented customer; only an anonymous sighting is kept
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ingest decided for one event."""

    event_id: str
    outcome: IngestOutcome
    customer_id: str | None = None
    pending_id: str | None = None
    similarity: float | None = None
    face_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input and why; the raw payload is kept for inspection."""

    dead_letter_id: str
    received_at: datetime
    source: str
    reason: str
    error_type: str
    event_id: str | None = None
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class TrackLink:
    """What one camera track was decided to be: a customer or a pending identity.

    Ingest stores it with the track's first decision; later events of the same
    ``(store_id, camera_id, track_id)`` join that owner instead of deciding
    again, so one track never makes two identities. Exactly one of
    ``customer_id`` / ``pending_id`` is set.
    """

    store_id: str
    camera_id: str
    track_id: str
    customer_id: str | None
    pending_id: str | None
    first_seen_at: datetime
    last_seen_at: datetime

    @property
    def key(self) -> str:
        """The link's one-string key (unambiguous whatever the ids contain)."""
        return track_key(self.store_id, self.camera_id, self.track_id)


#: How long a track link is kept after the track's last crop. Ingest stops
#: joining a track after ``visit_gap_seconds`` (30 min by default); the link
#: outlives that only so a late redelivery still finds it.
TRACK_LINK_RETENTION = timedelta(days=2)


def track_key(store_id: str, camera_id: str, track_id: str) -> str:
    """The storage key of a track: a JSON list, so no separator can collide."""
    return json.dumps([store_id, camera_id, track_id], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SeenEvent:
    """A row of the incoming-faces feed (the dashboard's Live page)."""

    event_id: str
    captured_at: datetime
    store_id: str
    camera_id: str
    zone: str
    outcome: str
    crop_key: str | None
    customer_id: str | None = None
    customer_name: str | None = None
    pending_id: str | None = None
    similarity: float | None = None


#: Sighting ids of hourly roll-ups start with this (``core.retention.roll_up_anonymous``).
ROLLUP_PREFIX = "agg_"


@dataclass(frozen=True, slots=True)
class AnonymousSighting:
    """Someone seen by a camera who is not a consented customer (consent-first mode).

    No face, no template, no identity: only where and when, so footfall, zone
    and dwell figures still count everyone. ``first_seen_at``..``last_seen_at``
    spans the crops of one edge track (dwell in front of that camera).
    """

    sighting_id: str
    store_id: str
    camera_id: str
    zone: str
    first_seen_at: datetime
    last_seen_at: datetime
    #: How many people the row stands for: 1 for a raw sighting; an hourly roll-up
    #: (``core.retention``) stands for ``people`` sightings that began in the hour
    #: starting at ``first_seen_at``, whose mean dwell is :attr:`dwell_seconds`.
    people: int = 1

    @property
    def dwell_seconds(self) -> float:
        """Dwell of the sighting (of a roll-up: the mean dwell of its sightings)."""
        return max(0.0, (self.last_seen_at - self.first_seen_at).total_seconds())

    @property
    def is_rollup(self) -> bool:
        return self.sighting_id.startswith(ROLLUP_PREFIX)
