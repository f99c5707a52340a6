"""Opt-in enrolment with the consent record first, and data-subject rights.

* :meth:`ConsentService.enrol`: the person reads the notice
  (:func:`core.consent.consent_notice`) at a kiosk or with staff, gives explicit
  consent, and only then is a template made from their photo. The consent
  record is written *before* the template exists; photo gates (one face, size,
  blur) run before anything is stored.
* Signed links: the store-scoped kiosk link (printed as a QR code) and the
  single-use withdrawal link every e-mail to a customer carries.
* Data-subject rights: find a person by a selfie (audited), export their data
  as a zip, withdraw consent (= erasure).

These work in both privacy modes; see :mod:`core.consent` for what differs.

>>> from core.bootstrap import build_services                                 # doctest: +SKIP
>>> consent = consent_service(build_services())                                # doctest: +SKIP
>>> consent.enrol(CustomerDetails("Ada", consent=True), selfie, channel="kiosk",
...               notice_version=consent.notice().version)                     # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from core.approvals import validate_details
from core.consent import ConsentRecord, Notice, consent_notice, consent_records
from core.errors import (
    FaceNotFoundError,
    FaceTooSmallError,
    MultipleFacesError,
    NotFoundError,
    TokenError,
    ValidationError,
)
from core.mail import build_customer_mail
from core.models import AuditEntry, Band, Customer, CustomerDetails, DetectedFace, new_id, utcnow
from core.ports import OutgoingMail
from core.tokens import TokenSigner

if TYPE_CHECKING:
    from core.bootstrap import Services
    from core.customers import Identification
    from core.privacy import ErasureReport

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
        self.services.privacy.refresh_gallery()  # edge agents with unmatched = "anonymous" (AWS)
        if customer.email:
            self.services.notifier.send(self.welcome_mail(customer))
        return customer

    def consent_records(self, customer_id: str) -> list[ConsentRecord]:
        """Every consent a customer gave, oldest first."""
        return consent_records(self.repos, customer_id)

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

    def _audit(self, actor: str, action: str, subject_id: str, details: dict[str, object]) -> None:
        self.repos.audit.append(AuditEntry(new_id("aud"), utcnow(), actor, action, subject_id, dict(details)))


def consent_service(services: Services) -> ConsentService:
    """A :class:`ConsentService` over ``services`` (cheap: it holds no state of its own)."""
    return ConsentService(services)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=_default)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)
