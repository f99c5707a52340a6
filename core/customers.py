"""Customers: enrol from photos, identify faces in a photo, profile, edit, merge."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.consent import CONSENT_FIRST
from core.errors import (
    FaceNotFoundError,
    MultipleFacesError,
    StoreLensError,
    ValidationError,
)
from core.models import (
    CROP_MARGIN,
    AuditEntry,
    Band,
    BoundingBox,
    Customer,
    DetectedFace,
    Face,
    FaceStatus,
    Transaction,
    Visit,
    distance_to_similarity,
    new_id,
    similarity_to_distance,
    utcnow,
)
from core.ports import BlobStore, FaceEmbedder, FaceIndex, Repositories
from core.recognition import RecognitionPolicy
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class Identification:
    """One face found in a photo and who it is (if anyone)."""

    bbox: BoundingBox
    band: Band
    similarity: float | None
    customer_id: str | None
    name: str | None

    @property
    def distance(self) -> float | None:
        """``1 - similarity``: the Euclidean face distance on the local backend."""
        return None if self.similarity is None else round(similarity_to_distance(self.similarity), 4)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer: Customer
    faces: list[Face]
    visits: list[Visit]
    transactions: list[Transaction]

    @property
    def spend_cents(self) -> int:
        return sum(t.amount_cents for t in self.transactions)


def crop_face(image: bytes, bbox: BoundingBox, margin: float = CROP_MARGIN) -> bytes:
    """JPEG of ``bbox`` plus a margin, cut from an encoded image."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as img:
        rgb = img.convert("RGB")
        box = bbox.expand(margin).clip(rgb.width, rgb.height)
        out = io.BytesIO()
        rgb.crop((box.left, box.top, box.right, box.bottom)).save(out, format="JPEG", quality=92)
        return out.getvalue()


class CustomerService:
    def __init__(
        self,
        *,
        settings: Settings,
        repos: Repositories,
        blobs: BlobStore,
        faces: FaceIndex,
        recognition: RecognitionPolicy,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.blobs = blobs
        self.faces = faces
        self.embedder = embedder
        # The bootstrap's policy, so identify() and ingest decide with one configuration.
        self.policy = recognition

    @property
    def collection_id(self) -> str:
        return self.settings.collection_id

    # ----------------------------------------------------------------- enrol
    def single_face(self, image: bytes, label: str = "image") -> DetectedFace:
        """The one face in ``image``; clear errors for none or several."""
        found = self.faces.detect_faces(image)
        if not found:
            raise FaceNotFoundError(f"{label}: no face found")
        if len(found) > 1:
            raise MultipleFacesError(f"{label}: {len(found)} faces found; use a photo of one person")
        return found[0]

    def enroll(
        self,
        name: str,
        images: Sequence[bytes],
        *,
        email: str | None = None,
        loyalty_id: str | None = None,
        consent: bool = True,
        notes: str = "",
        actor: str = "system",
        labels: Sequence[str] | None = None,
    ) -> Customer:
        """Create a customer from photos of them (exactly one face per photo).

        Refused in consent-first mode, where enrolment goes through
        :class:`core.enrolment.ConsentService` (kiosk or staff-assisted), which
        records the person's consent before any template exists.
        """
        if self.settings.privacy_mode == CONSENT_FIRST:
            raise ValidationError(
                "consent-first mode: enrol through the kiosk or the Privacy page, "
                "which record the person's consent before any face template"
            )
        from core.approvals import validate_details
        from core.models import CustomerDetails

        details = validate_details(CustomerDetails(name, email, loyalty_id, consent, notes))
        if not images:
            raise ValidationError("enrolling needs at least one photo")
        names = list(labels or [f"image {i + 1}" for i in range(len(images))])
        crops = [crop_face(img, self.single_face(img, names[i]).bbox) for i, img in enumerate(images)]
        if details.loyalty_id and self.repos.customers.find_by_loyalty_id(details.loyalty_id):
            raise ValidationError(f"loyalty id {details.loyalty_id} already belongs to a customer")
        customer = Customer.from_details(details)
        self.repos.customers.add(customer)
        for crop in crops:
            self._add_face(customer.customer_id, crop)
        self._audit(actor, "enroll", customer.customer_id, {"photos": len(crops), "consent": True})
        return customer

    def add_photo(self, customer_id: str, image: bytes, actor: str = "system") -> Face:
        """Add a template photo (one face) to an existing customer."""
        self.repos.customers.get(customer_id)
        crop = crop_face(image, self.single_face(image).bbox)
        face = self._add_face(customer_id, crop)
        self._audit(actor, "add_photo", customer_id, {"face_id": face.face_id})
        return face

    def _add_face(self, customer_id: str, crop: bytes) -> Face:
        face_id = new_id("fac")
        key = f"customers/{customer_id}/{face_id}.jpg"
        self.blobs.put(key, crop)
        indexed = self.faces.index_face(self.collection_id, crop, customer_id)
        face = Face(
            face_id=face_id,
            event_id=None,
            crop_key=key,
            captured_at=utcnow(),
            camera_id="enrolment",
            zone="enrolment",
            status=FaceStatus.CUSTOMER,
            index_face_id=indexed.face_id,
            customer_id=customer_id,
            similarity=1.0,
        )
        self.repos.faces.add(face)
        return face

    # -------------------------------------------------------------- identify
    def identify(self, image: bytes) -> list[Identification]:
        """Every face in a photo, largest first, with who it is (or ``None``)."""
        results = []
        for det in self.faces.detect_faces(image):
            crop = crop_face(image, det.bbox)
            try:
                verdict = self.policy.recognise(crop)
            except FaceNotFoundError:
                # The detector saw a face the embedder cannot align (tiny or
                # profile); report it as unknown rather than drop it.
                results.append(Identification(det.bbox, Band.NEW, None, None, None))
                continue
            name = None
            if verdict.customer_id:
                name = self.repos.customers.get(verdict.customer_id).name
            results.append(
                Identification(det.bbox, verdict.band, verdict.similarity, verdict.customer_id, name)
            )
        return results

    def compare(self, image_a: bytes, image_b: bytes) -> tuple[float, bool]:
        """Face distance between two single-face photos and whether it is a match.

        Needs an index that exposes embeddings (the local one).
        """
        if self.embedder is None:
            raise StoreLensError("compare needs the local face engine (STORELENS_BACKEND=local)")
        import numpy as np

        vec_a = self.embedder.embed_image(crop_face(image_a, self.single_face(image_a, "first image").bbox))
        vec_b = self.embedder.embed_image(crop_face(image_b, self.single_face(image_b, "second image").bbox))
        distance = float(np.linalg.norm(vec_a - vec_b))
        return distance, self.policy.band_for(distance_to_similarity(distance)) is Band.MATCH

    # --------------------------------------------------------------- queries
    def list(self, search: str | None = None, limit: int = 1000) -> list[Customer]:
        return self.repos.customers.list(search, limit)

    def get(self, customer_id: str) -> Customer:
        return self.repos.customers.get(customer_id)

    def profile(self, customer_id: str, *, visit_limit: int | None = None) -> CustomerProfile:
        """A customer with photos, purchases and zone visits (all, or the ``visit_limit`` latest)."""
        return CustomerProfile(
            customer=self.repos.customers.get(customer_id),
            faces=self.repos.faces.by_customer(customer_id),
            visits=self.repos.visits.by_customer(customer_id)
            if visit_limit is None
            else self.repos.visits.recent_for_customer(customer_id, visit_limit),
            transactions=self.repos.transactions.by_customer(customer_id),
        )

    # ----------------------------------------------------------------- edits
    def update(self, customer: Customer, actor: str = "system") -> Customer:
        """Save edited details (consent cannot be silently dropped here)."""
        from core.approvals import validate_details
        from core.models import CustomerDetails

        current = self.repos.customers.get(customer.customer_id)
        details = validate_details(
            CustomerDetails(customer.name, customer.email, customer.loyalty_id, True, customer.notes)
        )
        if details.loyalty_id:
            other = self.repos.customers.find_by_loyalty_id(details.loyalty_id)
            if other and other.customer_id != customer.customer_id:
                raise ValidationError(
                    f"loyalty id {details.loyalty_id} already belongs to {other.customer_id}"
                )
        updated = replace(
            current,
            name=details.name,
            email=details.email,
            loyalty_id=details.loyalty_id,
            notes=details.notes,
            updated_at=utcnow(),
        )
        self.repos.customers.update(updated)
        changed = sorted(
            f for f in ("name", "email", "loyalty_id", "notes") if getattr(current, f) != getattr(updated, f)
        )
        self._audit(actor, "update", customer.customer_id, {"fields": changed})
        return updated

    def merge(self, keep_id: str, merge_id: str, actor: str = "system") -> Customer:
        """Fold ``merge_id`` into ``keep_id``: faces, visits, sales; then delete it."""
        if keep_id == merge_id:
            raise ValidationError("cannot merge a customer into itself")
        keep = self.repos.customers.get(keep_id)
        gone = self.repos.customers.get(merge_id)
        faces = self.repos.faces.by_customer(merge_id)
        # Re-index the moved faces under the kept id, so search results name it.
        moves: list[tuple[Face, str | None]] = []
        for face in faces:
            new_index = None
            if face.index_face_id and face.crop_key:
                new_index = self.faces.index_face(
                    self.collection_id, self.blobs.get(face.crop_key), keep_id
                ).face_id
            moves.append((face, new_index))
        old = [f.index_face_id for f in faces if f.index_face_id]
        with self.repos.atomic():
            for face, new_index in moves:
                face.customer_id = keep_id
                face.index_face_id = new_index
                self.repos.faces.update(face)
            visits = self.repos.visits.reassign(merge_id, keep_id)
            sales = self.repos.transactions.reassign(merge_id, keep_id)
            self.repos.events.reassign_customer(merge_id, keep_id)
            if not keep.loyalty_id and gone.loyalty_id:
                keep = replace(keep, loyalty_id=gone.loyalty_id, updated_at=utcnow())
            self.repos.customers.delete(merge_id)
            self.repos.customers.update(keep)
            self._audit(
                actor,
                "merge",
                keep_id,
                {"merged": merge_id, "faces": len(faces), "visits": visits, "transactions": sales},
            )
        if old:
            self.faces.delete_faces(self.collection_id, old)
        return keep

    def _audit(self, actor: str, action: str, subject_id: str, details: dict[str, object]) -> None:
        self.repos.audit.append(AuditEntry(new_id("aud"), utcnow(), actor, action, subject_id, dict(details)))
