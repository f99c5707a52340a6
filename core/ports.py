"""Ports: the small interfaces every backend implements.

Each port is a :class:`typing.Protocol` named in domain terms that takes and
returns StoreLens dataclasses (never boto3 dicts, SQL rows or numpy internals).
The local adapters live in ``core/local/``, the AWS ones in ``core/aws/``; the
contract tests in ``tests/contract/`` run the same assertions against both.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.errors import ValidationError
from core.models import (
    AnonymousSighting,
    AuditEntry,
    Customer,
    CustomerDetails,
    DeadLetter,
    DetectedFace,
    Face,
    FaceCrop,
    FaceEvent,
    FaceMatch,
    FaceStatus,
    IndexedFace,
    PendingIdentity,
    PendingStatus,
    SeenEvent,
    TrackLink,
    Transaction,
    Visit,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# --------------------------------------------------------------------------- blobs


class BlobStore(Protocol):
    """Opaque byte objects (face crops) addressed by ``/``-separated keys."""

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Store ``data`` durably under ``key`` (overwrites)."""

    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise ``NotFoundError`` if absent."""

    def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    def url(self, key: str, expires_seconds: int = 3600) -> str | None:
        """A URL a browser can fetch, or ``None`` when the store has none."""


# ----------------------------------------------------------------------- face index


class FaceIndex(Protocol):
    """A searchable collection of face templates, shaped like a Rekognition collection.

    ``external_id`` is always an opaque id (``cus_...``, ``pid_...``,
    ``dnt_...``), never a person's name. Images are encoded bytes (JPEG/PNG).
    Similarities are on the common 0..1 scale (see :mod:`core.models`).
    """

    def create_collection(self, collection_id: str) -> None:
        """Create; raise ``ConflictError`` if it already exists."""

    def delete_collection(self, collection_id: str) -> None:
        """Delete with all its faces; raise ``NotFoundError`` if missing."""

    def list_collections(self) -> list[str]: ...

    def detect_faces(self, image: bytes) -> list[DetectedFace]:
        """Faces in ``image``, largest first. ``ImageDecodeError`` on bad bytes."""

    def index_face(self, collection_id: str, image: bytes, external_id: str) -> IndexedFace:
        """Index the largest face of ``image``; ``FaceNotFoundError`` if none."""

    def search_by_image(
        self, collection_id: str, image: bytes, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Faces similar to the largest face in ``image``, best first."""

    def search_by_face(
        self, collection_id: str, face_id: str, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        """Faces similar to an indexed face (itself excluded), best first."""

    def search_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        threshold: float,
        max_results: int,
        *,
        detector: str | None = None,
    ) -> list[list[FaceMatch]]:
        """One hit list per crop (same order), each best first: the crops of one tracked person.

        A crop's face is its ``face`` box when it has one (no detection again;
        ``detector`` is the event's, whose box convention an aligner may need),
        else the largest face of its JPEG. A crop without a usable face gets an
        empty list; only when every crop fails is the first crop's error raised
        (``FaceNotFoundError``, ``ImageDecodeError``). ``NotFoundError`` for a
        missing collection.
        """

    def index_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        external_id: str,
        *,
        detector: str | None = None,
    ) -> list[IndexedFace | None]:
        """Index several crops of one owner; ``None`` for a crop without a usable face.

        Raises as :meth:`search_crops` does when every crop fails.
        """

    def list_faces(self, collection_id: str) -> list[IndexedFace]: ...

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> None:
        """Remove faces; unknown ids are ignored."""


# --------------------------------------------------------------------- repositories


class CustomerRepository(Protocol):
    def add(self, customer: Customer) -> None: ...

    def get(self, customer_id: str) -> Customer:
        """Raise ``NotFoundError`` if there is no such customer."""

    def update(self, customer: Customer) -> None: ...

    def delete(self, customer_id: str) -> None: ...

    def list(self, search: str | None = None, limit: int = 1000) -> list[Customer]:
        """Customers whose name, e-mail or loyalty id contains ``search``."""

    def find_by_loyalty_id(self, loyalty_id: str) -> Customer | None: ...

    def count(self) -> int: ...


class FaceRepository(Protocol):
    def add(self, face: Face) -> None: ...

    def get(self, face_id: str) -> Face: ...

    def update(self, face: Face) -> None: ...

    def delete(self, face_id: str) -> None: ...

    def by_customer(self, customer_id: str) -> list[Face]: ...

    def count_templates(self, customer_id: str) -> int:
        """How many of the customer's faces are indexed (their recognition templates)."""

    def by_pending(self, pending_id: str) -> list[Face]: ...

    def by_status(self, status: FaceStatus) -> list[Face]: ...

    def by_index_face_ids(self, index_face_ids: Sequence[str]) -> dict[str, Face]:
        """Map collection face ids to the stored faces that own them."""


class VisitRepository(Protocol):
    def add(self, visit: Visit) -> None: ...

    def latest_for_customer(self, customer_id: str) -> Visit | None: ...

    def extend(self, visit_id: str, last_seen_at: datetime) -> None:
        """Move a visit's ``last_seen_at`` forward (the person is still here)."""

    def by_customer(self, customer_id: str) -> list[Visit]: ...

    def recent_for_customer(self, customer_id: str, limit: int) -> list[Visit]:
        """The customer's ``limit`` latest zone visits by start, newest first (a profile's
        timeline: a regular can have tens of thousands)."""

    def between(self, start: datetime, end: datetime) -> list[Visit]: ...

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int: ...

    def delete_by_customer(self, customer_id: str) -> int: ...


class PendingRepository(Protocol):
    def add(self, pending: PendingIdentity) -> None: ...

    def get(self, pending_id: str) -> PendingIdentity: ...

    def update(self, pending: PendingIdentity) -> None: ...

    def delete(self, pending_id: str) -> None: ...

    def list(self, status: PendingStatus | None = PendingStatus.PENDING) -> list[PendingIdentity]: ...

    def expired(self, now: datetime) -> builtins.list[PendingIdentity]:
        """Pending (undecided) identities whose ``expires_at`` is before ``now``."""


class TransactionRepository(Protocol):
    def add(self, transaction: Transaction) -> bool:
        """Store; return ``False`` if the id was already stored (idempotent)."""

    def by_customer(self, customer_id: str) -> list[Transaction]: ...

    def between(self, start: datetime, end: datetime) -> list[Transaction]: ...

    def link(self, transaction_id: str, customer_id: str | None) -> None: ...

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int: ...

    def unlink_customer(self, customer_id: str) -> int:
        """Remove the link to ``customer_id`` (the sale itself stays). Return count."""


class EventLog(Protocol):
    """Received events (for idempotency and the Live feed) and dead letters."""

    def is_processed(self, event_id: str) -> bool: ...

    def record(
        self,
        event: FaceEvent,
        crop_key: str | None,
        result_outcome: str,
        customer_id: str | None,
        pending_id: str | None,
        similarity: float | None,
    ) -> bool:
        """Record a processed event; ``False`` if ``event_id`` was already recorded."""

    def recent(
        self,
        limit: int = 100,
        camera_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> list[SeenEvent]: ...

    def forget_customer(self, customer_id: str) -> int:
        """Detach events from an erased customer (drop crop keys and ids)."""

    def forget_pending(self, pending_id: str) -> int: ...

    def attribute_pending(self, pending_id: str, customer_id: str) -> int:
        """Attribute a pending identity's events to the customer it became."""

    def reassign_customer(self, from_customer_id: str, to_customer_id: str) -> int:
        """Move events from a merged-away customer to the one kept."""

    def move_crop(self, event_id: str, crop_key: str) -> None:
        """Point an event at its crop's new key (pending crops move on approval)."""

    def add_dead_letter(self, letter: DeadLetter) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...


class TrackRepository(Protocol):
    """Which owner each camera track was decided to be (see :class:`core.models.TrackLink`)."""

    def get(self, store_id: str, camera_id: str, track_id: str) -> TrackLink | None: ...

    def claim(self, link: TrackLink) -> TrackLink:
        """Store ``link`` unless its track already has one; return the stored link.

        The first decision wins, also between processes (an insert-if-absent).
        """

    def put(self, link: TrackLink) -> None:
        """Store ``link``, replacing the track's previous one (a later event, a stale owner)."""

    def forget(self, owner_id: str) -> int:
        """Drop the links to a customer or pending identity (erasure, rejection). Return count."""

    def prune(self, before: datetime) -> int:
        """Drop links last seen before ``before`` (a track that old never joins again)."""


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> None: ...

    def list(self, subject_id: str | None = None, limit: int = 200) -> list[AuditEntry]: ...


class TokenLedger(Protocol):
    """Remembers single-use token nonces so a link can be used only once."""

    def consume(self, nonce: str, expires_at: datetime) -> bool:
        """Mark ``nonce`` used; ``False`` if it had been used before."""


class AnonymousSightingRepository(Protocol):
    """Sightings of people who are not consented customers (consent-first mode).

    They carry no face and no identity, so they are kept like any footfall count.
    """

    def add(self, sighting: AnonymousSighting) -> bool:
        """Store; ``False`` if ``sighting_id`` was already stored (idempotent)."""

    def between(self, start: datetime, end: datetime) -> list[AnonymousSighting]:
        """Sightings whose ``first_seen_at`` is in ``[start, end)``, oldest first."""

    def delete(self, sighting_ids: Sequence[str]) -> int:
        """Remove sightings (after a roll-up); unknown ids are ignored. Return how many went."""

    def extend(self, sighting_id: str, first_seen_at: datetime, last_seen_at: datetime) -> None:
        """Widen a stored sighting's span to include ``first_seen_at``..``last_seen_at``
        (a later event of the same camera track); a missing id is ignored."""


class Repositories(Protocol):
    """All repositories of one backend, plus a unit of work.

    ``atomic()`` groups writes: on the local backend it is one SQLite
    transaction; on DynamoDB it is best effort (writes are ordered and
    idempotent instead).
    """

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def faces(self) -> FaceRepository: ...

    @property
    def visits(self) -> VisitRepository: ...

    @property
    def pending(self) -> PendingRepository: ...

    @property
    def transactions(self) -> TransactionRepository: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def tokens(self) -> TokenLedger: ...

    @property
    def anonymous(self) -> AnonymousSightingRepository: ...

    @property
    def tracks(self) -> TrackRepository: ...

    def atomic(self) -> AbstractContextManager[None]: ...


# ----------------------------------------------------------------- approvals, mail


class DecisionAction(StrEnum):
    """What a human decided about a pending identity (the values are the wire form)."""

    #: A new customer (needs :class:`CustomerDetails` with consent).
    APPROVE = "approve"
    REJECT = "reject"
    #: Do not track this person (a few templates stay so later sightings are dropped).
    NOT_A_CUSTOMER = "not_a_customer"
    #: Review band: it is the suggested customer.
    CONFIRM = "confirm"
    #: Review band: not the suggested customer; treat as a new person.
    NOT_THIS_PERSON = "not_this_person"
    #: It is ``Decision.customer_id``.
    MERGE = "merge"

    @classmethod
    def parse(cls, value: str) -> DecisionAction:
        """The action named ``value``; ``ValidationError`` naming the allowed ones.

        >>> DecisionAction.parse("merge")
        <DecisionAction.MERGE: 'merge'>
        """
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(f"unknown action {value!r}; use one of: {', '.join(ACTIONS)}") from None


ACTIONS = tuple(action.value for action in DecisionAction)


@dataclass(frozen=True, slots=True)
class Decision:
    """A human decision on a pending identity.

    >>> Decision("approve", "dashboard:ann").action is DecisionAction.APPROVE
    True
    """

    action: DecisionAction
    actor: str
    details: CustomerDetails | None = None
    customer_id: str | None = None

    def __post_init__(self) -> None:
        # Accept the wire form too, so an unknown action fails here, named.
        object.__setattr__(self, "action", DecisionAction.parse(self.action))


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A fully built e-mail (RFC 5322 bytes) and who it concerns."""

    to: tuple[str, ...]
    subject: str
    mime: bytes
    subject_id: str  # the pending identity (or customer) it is about
    meta: dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, mail: OutgoingMail) -> str:
        """Deliver and return a message id."""

    def forget(self, subject_id: str) -> int:
        """Delete stored copies about ``subject_id`` where the backend keeps any."""


class Outbox(Protocol):
    """Where a backend keeps the e-mails it "sends" so people can read them (local only)."""

    folder: Path

    def messages(self) -> list[tuple[Path, EmailMessage]]:
        """Stored mails, newest first."""


class ApprovalCallbacks(Protocol):
    """What an approval workflow calls back into while it runs (see ``core.approvals``)."""

    def notify(self, pending_id: str) -> str:
        """Send the approval e-mail; return the message id."""

    def record_decision(self, pending_id: str, decision: Decision) -> str | None:
        """Carry out a decision; return the customer id it made or joined, if any."""

    def expire(self, pending_id: str, actor: str = "retention") -> None:
        """Nobody decided in time: discard the pending identity."""


class ApprovalWorkflow(Protocol):
    """Runs one approval per pending identity until a human decides."""

    def start(self, pending: PendingIdentity) -> str:
        """Begin waiting for a decision; return an execution reference."""

    def submit(self, pending_id: str, decision: Decision) -> None:
        """Deliver the decision; the workflow then records it."""

    def cancel(self, pending_id: str, reason: str) -> None:
        """Stop waiting (expired, erased)."""

    def forget(self, pending_id: str) -> None:
        """Drop stored state about ``pending_id`` where the backend keeps any (erasure)."""

    def heartbeat(self, pending_id: str) -> bool:
        """Tell a waiting approval it is still wanted; ``False`` if there was nothing to tell."""


class FaceEmbedder(Protocol):
    """Turns the largest face of an image into a template vector (the local engine has one)."""

    def embed_image(self, image: bytes) -> NDArray[np.float32]:
        """Raise ``FaceNotFoundError`` when there is no face."""

    def embed_crops(
        self, crops: Sequence[FaceCrop], *, detector: str | None = None
    ) -> list[NDArray[np.float32] | None]:
        """One template per crop (``None`` for a crop without a usable face)."""


@dataclass(frozen=True)
class ConsentedTemplates:
    """Face templates of customers who consented, for an edge agent's in-memory matching.

    Row ``i`` of ``vectors`` (float32, one 128-D dlib/ONNX template per row) belongs
    to ``customer_ids[i]`` and came from the stored face ``face_ids[i]``.
    """

    customer_ids: tuple[str, ...]
    face_ids: tuple[str, ...]
    vectors: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.customer_ids)


class ConsentGallery(Protocol):
    """Where an edge agent reads the consented customers' templates (``unmatched = "anonymous"``).

    Local: read from the store's SQLite face index; AWS: one S3 object the backend
    rewrites when customers are enrolled, erased or retired (:class:`core.gallery.GalleryPublisher`).
    """

    def templates(self) -> ConsentedTemplates:
        """The current templates (empty when there are none yet)."""


class GalleryStore(ConsentGallery, Protocol):
    """A gallery the backend writes as a whole (AWS: the S3 object)."""

    def write(self, templates: ConsentedTemplates) -> None: ...


class EventPublisher(Protocol):
    """How an edge agent hands a FaceEvent to the pipeline."""

    def publish(self, event: FaceEvent) -> None: ...

    def close(self) -> None: ...
