"""Consent-first mode: recognise only people who enrolled with consent.

``STORELENS_PRIVACY_MODE=consent-first`` changes three things:

* **Ingest** (:func:`discards` / :func:`record_anonymous`): a face that is not
  a consented customer (the ``new`` *and* the ``review`` band) is matched in
  memory and then dropped. No crop, no template, no pending identity is
  written; only an :class:`~core.models.AnonymousSighting` (store, camera, zone,
  time span of the track) and the event id (so a redelivery stays a duplicate).
* **Enrolment is opt-in** (:meth:`ConsentService.enrol`): the person reads the
  notice (:func:`consent_notice`) at a kiosk or with staff, gives explicit
  consent, and only then is a template made from their photo. The consent
  record is written *before* the template exists.
* **Data-subject rights**: find a person's data by a selfie (audited), export
  it as a zip, withdraw consent through a signed link (= erasure), and the
  retention sweep deletes templates and photos of customers not seen for
  ``STORELENS_CUSTOMER_RETENTION_DAYS``.

The enrolment and rights features work in both modes; only ingest differs.

>>> from core.bootstrap import build_services                                 # doctest: +SKIP
>>> consent = consent_service(build_services())                                # doctest: +SKIP
>>> consent.enrol(CustomerDetails("Ada", consent=True), selfie, channel="kiosk",
...               notice_version=consent.notice().version)                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from core.errors import (
    FaceNotFoundError,
    FaceTooSmallError,
    MultipleFacesError,
    NotFoundError,
    TokenError,
    ValidationError,
)
from core.models import (
    AnonymousSighting,
    AuditEntry,
    Band,
    Customer,
    CustomerDetails,
    DetectedFace,
    FaceEvent,
    IngestOutcome,
    IngestResult,
    new_id,
    utcnow,
)
from core.ports import OutgoingMail, Repositories
from core.settings import Settings
from core.tokens import TokenSigner

if TYPE_CHECKING:
    from core.bootstrap import Services
    from core.customers import Identification
    from core.privacy import ErasureReport
    from core.recognition import Recognition

REVIEW = "review"
CONSENT_FIRST = "consent-first"

#: How a consent was given.
CHANNELS = ("kiosk", "staff")
#: Enrolment photo gates: the face's smaller side in pixels, and the variance of
#: the Laplacian of the face resized to 128 px (measured on the test photos:
#: sharp portraits 107-1393; a Gaussian blur of ~1 % of the face width 8-58).
ENROL_MIN_FACE_PX = 80
ENROL_MIN_SHARPNESS = 40.0
#: A kiosk link (printed as a QR code) stays valid this long; print a new one after.
KIOSK_LINK_DAYS = 90
#: A withdrawal link in an e-mail stays valid this long (a new mail carries a new one).
WITHDRAW_LINK_DAYS = 365
KIOSK_ACTION = "kiosk"
WITHDRAW_ACTION = "withdraw"


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
    duplicate; the sighting spans the track's crops, so dwell is measurable.
    """
    times = [c.captured_at for c in event.all_crops] or [event.captured_at]
    sighting = AnonymousSighting(
        sighting_id=f"anon_{event.event_id}",
        store_id=event.store_id,
        camera_id=event.camera_id,
        zone=event.zone,
        first_seen_at=min(times),
        last_seen_at=max(times),
    )
    with repos.atomic():
        repos.anonymous.add(sighting)
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


def footfall(repos: Repositories, start: datetime, end: datetime) -> Footfall:
    """Footfall in ``[start, end)`` that counts people who are not customers too."""
    visits = repos.visits.between(start, end)
    anonymous = repos.anonymous.between(start, end)
    zones: dict[str, int] = {}
    for zone in [v.zone for v in visits] + [s.zone for s in anonymous]:
        zones[zone] = zones.get(zone, 0) + 1
    dwell = sum(s.dwell_seconds for s in anonymous) / len(anonymous) if anonymous else 0.0
    return Footfall(len(visits), len(anonymous), dict(sorted(zones.items())), dwell)


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


@dataclass(frozen=True, slots=True)
class PhotoCheck:
    """A photo that passed the enrolment gates."""

    face: DetectedFace
    sharpness: float


def sharpness(image: bytes, face: DetectedFace) -> float:
    """Variance of the Laplacian of the face, resized to 128 px (higher is sharper)."""
    import cv2
    import numpy as np

    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValidationError("the photo could not be read; use a JPEG or PNG")
    box = face.bbox.clip(gray.shape[1], gray.shape[0])
    crop = gray[box.top : box.bottom, box.left : box.right]
    if crop.size == 0:
        raise FaceNotFoundError("no face found in the photo")
    crop = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


# ---------------------------------------------------------------------- service


class ConsentService:
    """Opt-in enrolment with the consent record first, and data-subject rights."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.repos = services.repos
        self._signer: TokenSigner | None = None

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self._signer = TokenSigner(self.settings.resolved_secret())
        return self._signer

    def notice(self) -> Notice:
        return consent_notice(self.settings)

    # ------------------------------------------------------------- enrolment
    def check_photo(self, image: bytes) -> PhotoCheck:
        """Exactly one face, large and sharp enough; a clear message otherwise."""
        if not image:
            raise ValidationError("no photo was taken or uploaded")
        found = self.services.faces.detect_faces(image)
        if not found:
            raise FaceNotFoundError(
                "no face found: face the camera in good light, without sunglasses or a mask"
            )
        if len(found) > 1:
            raise MultipleFacesError(
                f"{len(found)} faces found: only the person enrolling may be in the photo"
            )
        face = found[0]
        size = min(face.bbox.width, face.bbox.height)
        if size < ENROL_MIN_FACE_PX:
            raise FaceTooSmallError(
                f"the face is too small ({size} px, at least {ENROL_MIN_FACE_PX}): come closer to the camera"
            )
        sharp = sharpness(image, face)
        if sharp < ENROL_MIN_SHARPNESS:
            raise ValidationError(
                f"the photo is blurred (sharpness {sharp:.0f}, at least {ENROL_MIN_SHARPNESS:.0f}): "
                "hold still and try again"
            )
        return PhotoCheck(face, sharp)

    def enrol(
        self,
        details: CustomerDetails,
        image: bytes,
        *,
        channel: str,
        notice_version: str,
        assisted_by: str | None = None,
        store_id: str | None = None,
    ) -> Customer:
        """Enrol someone who consented: consent record, then customer, then template.

        ``notice_version`` must be the version of the notice the person was
        shown (a stale kiosk screen is refused). Nothing is stored when a gate
        fails; if making the template fails after the consent was recorded, the
        customer is erased again (the consent record stays, as history).
        """
        from core.approvals import validate_details

        if channel not in CHANNELS:
            raise ValidationError(f"unknown consent channel {channel!r}; use one of: {', '.join(CHANNELS)}")
        if channel == "staff" and not assisted_by:
            raise ValidationError("staff-assisted enrolment needs the name of the staff member")
        if notice_version != self.notice().version:
            raise ValidationError("the notice has changed since it was shown; show it again and retry")
        if not details.consent:
            raise ValidationError("explicit consent is required to enrol; nothing was stored")
        clean = validate_details(details)
        self.check_photo(image)
        if clean.loyalty_id and self.repos.customers.find_by_loyalty_id(clean.loyalty_id):
            raise ValidationError(f"loyalty id {clean.loyalty_id} already belongs to a customer")

        customer = Customer.from_details(clean)
        record = ConsentRecord(
            consent_id=new_id("cns"),
            customer_id=customer.customer_id,
            given_at=utcnow(),
            notice_version=notice_version,
            channel=channel,
            assisted_by=assisted_by,
            store_id=store_id or self.settings.store_id,
        )
        self._append_consent(record)
        customer.consent_at = record.given_at
        self.repos.customers.add(customer)
        try:
            self.services.customers.add_photo(customer.customer_id, image, actor=assisted_by or channel)
        except BaseException:
            self.services.privacy.erase(customer.customer_id, actor="enrolment-rollback")
            raise
        self._audit(
            assisted_by or channel, "enroll", customer.customer_id, {"channel": channel, "consent": True}
        )
        if customer.email:
            self.services.notifier.send(self.welcome_mail(customer))
        return customer

    def consent_records(self, customer_id: str) -> list[ConsentRecord]:
        """Every consent a customer gave, oldest first."""
        entries = [a for a in self.repos.audit.list(customer_id, limit=1000) if a.action == "consent"]
        return sorted((_record(a) for a in entries), key=lambda r: r.given_at)

    def _append_consent(self, record: ConsentRecord) -> None:
        details = {
            "consent_id": record.consent_id,
            "notice_version": record.notice_version,
            "channel": record.channel,
            "assisted_by": record.assisted_by,
            "store_id": record.store_id,
        }
        actor = record.assisted_by or f"data subject ({record.channel})"
        self.repos.audit.append(
            AuditEntry(new_id("aud"), record.given_at, actor, "consent", record.customer_id, details)
        )

    # --------------------------------------------------------------- links
    def kiosk_link(self, store_id: str | None = None) -> str:
        """The store-scoped, signed kiosk URL the dashboard prints as a QR code."""
        token = self.signer.issue(store_id or self.settings.store_id, KIOSK_ACTION, KIOSK_LINK_DAYS * 86400)
        # The app's root URL: a deep link to a page name makes a fresh session show
        # "page not found" before dashboard.py routes it; the query alone routes it.
        return f"{self.settings.public_url.rstrip('/')}/?{urlencode({'kiosk': token})}"

    def verify_kiosk(self, token: str) -> str:
        """The store a kiosk token was issued for; ``TokenError`` if forged or expired."""
        claims = self.signer.verify(token)
        if claims.action != KIOSK_ACTION:
            raise TokenError("this link is not a kiosk link")
        return claims.subject

    def withdrawal_link(self, customer_id: str) -> str:
        """A signed, single-use link that withdraws consent (and so erases the customer)."""
        token = self.signer.issue(customer_id, WITHDRAW_ACTION, WITHDRAW_LINK_DAYS * 86400)
        return f"{self.settings.public_url.rstrip('/')}/?{urlencode({'withdraw': token})}"

    def verify_withdrawal(self, token: str) -> Customer:
        """The customer a withdrawal link is for (not used up)."""
        claims = self.signer.verify(token)
        if claims.action != WITHDRAW_ACTION:
            raise TokenError("this link is not a withdrawal link")
        try:
            return self.repos.customers.get(claims.subject)
        except NotFoundError as exc:
            raise TokenError(
                "there is nothing left to withdraw: this person's data is already erased"
            ) from exc

    def withdraw(self, token: str) -> ErasureReport:
        """Withdrawal of consent through a link: erase everything about the person."""
        customer = self.verify_withdrawal(token)
        self.signer.consume(token, self.repos.tokens)
        return self.services.privacy.erase(customer.customer_id, actor="data subject (withdrawal link)")

    def welcome_mail(self, customer: Customer) -> OutgoingMail:
        """The enrolment confirmation, with the withdrawal link every customer mail carries."""
        from core.mail import build_customer_mail

        if not customer.email:
            raise ValidationError(f"{customer.customer_id} has no e-mail address")
        return build_customer_mail(
            customer_id=customer.customer_id,
            to=customer.email,
            sender=self.settings.ses_sender or self.settings.mail_sender,
            subject="You joined StoreLens recognition",
            body=(
                f"Hello {customer.name},\n\nyou agreed to be recognised in our store. "
                f"We keep your photo and face template until {self.settings.customer_retention_days} "
                "days after your last visit."
            ),
            withdraw_url=self.withdrawal_link(customer.customer_id),
        )

    # ------------------------------------------------------ data-subject rights
    def find_by_selfie(self, image: bytes, actor: str) -> list[Identification]:
        """Who the faces in a selfie are, for an access or erasure request. Audited."""
        self.check_photo(image)
        found = self.services.customers.identify(image)
        matched = [i.customer_id for i in found if i.customer_id and i.band is Band.MATCH]
        self._audit(actor, "dsar_search", matched[0] if matched else "nobody", {"matches": matched})
        return found

    def export(self, customer_id: str, actor: str) -> bytes:
        """A zip with everything stored about one customer (for an access request). Audited.

        ``customer.json``, ``consent.json``, ``visits.json``, ``sales.json``,
        ``faces.json``, ``audit.json`` and ``photos/<face_id>.jpg``.
        """
        profile = self.services.customers.profile(customer_id)
        records = self.consent_records(customer_id)
        audit = self.repos.audit.list(customer_id, limit=1000)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("customer.json", _json(asdict(profile.customer)))
            zf.writestr("consent.json", _json([asdict(r) for r in records]))
            zf.writestr("visits.json", _json([asdict(v) for v in profile.visits]))
            zf.writestr("sales.json", _json([asdict(t) for t in profile.transactions]))
            zf.writestr("faces.json", _json([asdict(f) for f in profile.faces]))
            zf.writestr("audit.json", _json([asdict(a) for a in audit]))
            for face in profile.faces:
                if not face.crop_key:
                    continue
                try:
                    zf.writestr(f"photos/{face.face_id}.jpg", self.services.blobs.get(face.crop_key))
                except NotFoundError:
                    continue
        self._audit(
            actor, "export", customer_id, {"faces": len(profile.faces), "visits": len(profile.visits)}
        )
        return out.getvalue()

    # ------------------------------------------------------------- retention
    @staticmethod
    def inactive(settings: Settings, repos: Repositories, now: datetime | None = None) -> list[str]:
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

    def _audit(self, actor: str, action: str, subject_id: str, details: dict[str, object]) -> None:
        self.repos.audit.append(AuditEntry(new_id("aud"), utcnow(), actor, action, subject_id, dict(details)))


def consent_service(services: Services) -> ConsentService:
    """The services' :class:`ConsentService` (made once, kept in ``services.extras``)."""
    existing = services.extras.get("consent")
    if isinstance(existing, ConsentService):
        return existing
    made = ConsentService(services)
    services.extras["consent"] = made
    return made


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


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=_default)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)


__all__: Sequence[str] = [
    "CONSENT_FIRST",
    "REVIEW",
    "ConsentRecord",
    "ConsentService",
    "Footfall",
    "Notice",
    "consent_notice",
    "consent_service",
    "discards",
    "footfall",
    "record_anonymous",
]
