"""Opt-in enrolment: the consent record is stored before any template exists;
photo gates refuse what would make a poor template, and store nothing then."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageFilter

from core.bootstrap import Services
from core.enrolment import consent_service
from core.errors import (
    FaceNotFoundError,
    FaceTooSmallError,
    MultipleFacesError,
    TokenError,
    ValidationError,
)
from core.models import CustomerDetails, IndexedFace
from tests.support.photos import photo_bytes


class _ConsentWitness:
    """The real face index, noting what storage held when each template was made."""

    def __init__(self, inner: Any, svc: Services) -> None:
        self._inner = inner
        self._svc = svc
        self.seen: list[tuple[str, list[str], bool]] = []

    def index_face(self, collection_id: str, image: bytes, external_id: str) -> IndexedFace:
        actions = [a.action for a in self._svc.repos.audit.list(external_id)]
        exists = bool(self._svc.repos.customers.list(external_id))
        self.seen.append((external_id, actions, exists))
        return self._inner.index_face(collection_id, image, external_id)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, format="JPEG", quality=92)
    return out.getvalue()


def _nothing_stored(svc: Services) -> bool:
    return (
        svc.repos.customers.count() == 0
        and svc.repos.audit.list() == []
        and svc.faces.list_faces(svc.settings.collection_id) == []
        and svc.blobs.list() == []
    )


def test_consent_is_recorded_before_the_template(consent_first: Services) -> None:
    svc = consent_first
    witness = _ConsentWitness(svc.faces, svc)
    svc.customers.faces = witness  # the enrolment path makes its template through this index
    consent = consent_service(svc)
    notice = consent.notice()
    customer = consent.enrol(
        CustomerDetails("Grace Hopper", "grace@example.com", "L-1", consent=True),
        photo_bytes("grace_hopper"),
        channel="staff",
        assisted_by="alice",
        notice_version=notice.version,
    )
    # When the template was made, storage already held the consent record and the customer.
    ((external_id, actions_then, customer_then),) = witness.seen
    assert external_id == customer.customer_id and actions_then == ["consent"] and customer_then
    (record,) = consent.consent_records(customer.customer_id)
    assert (record.notice_version, record.channel, record.assisted_by) == (notice.version, "staff", "alice")
    (face,) = svc.repos.faces.by_customer(customer.customer_id)
    stored = svc.repos.customers.get(customer.customer_id)
    assert stored.consent and stored.consent_at == record.given_at <= face.captured_at
    # The welcome mail carries a signed withdrawal link.
    ((_path, mail),) = svc.notifier.messages()  # type: ignore[attr-defined]
    assert mail["X-StoreLens-Customer-Id"] == customer.customer_id and mail["To"] == "grace@example.com"
    link = mail.get_body(("plain",)).get_content().split("erased: ", 1)[1].split()[0]
    assert consent.verify_withdrawal(link.split("withdraw=", 1)[1]).customer_id == customer.customer_id


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: photo_bytes("t1"), MultipleFacesError, "only the person enrolling"),
        (lambda: _jpeg(Image.new("RGB", (400, 400), (90, 120, 140))), FaceNotFoundError, "no face found"),
        (
            lambda: _jpeg(Image.open(io.BytesIO(photo_bytes("obama"))).reduce(5)),
            FaceTooSmallError,
            "come closer",
        ),
        (
            lambda: _jpeg(Image.open(io.BytesIO(photo_bytes("obama"))).filter(ImageFilter.GaussianBlur(7))),
            ValidationError,
            "blurred",
        ),
    ],
    ids=["several-faces", "no-face", "too-small", "blurred"],
)
def test_photo_gates_refuse_with_a_clear_message_and_store_nothing(
    consent_first: Services, make: Any, error: type[Exception], message: str
) -> None:
    consent = consent_service(consent_first)
    with pytest.raises(error, match=message):
        consent.enrol(
            CustomerDetails("Someone", consent=True),
            make(),
            channel="kiosk",
            notice_version=consent.notice().version,
        )
    assert _nothing_stored(consent_first)


def test_no_consent_or_a_stale_notice_stores_nothing(consent_first: Services) -> None:
    consent = consent_service(consent_first)
    with pytest.raises(ValidationError, match="explicit consent"):
        consent.enrol(
            CustomerDetails("Someone", consent=False),
            photo_bytes("obama"),
            channel="kiosk",
            notice_version=consent.notice().version,
        )
    with pytest.raises(ValidationError, match="notice has changed"):
        consent.enrol(
            CustomerDetails("Someone", consent=True),
            photo_bytes("obama"),
            channel="kiosk",
            notice_version="old",
        )
    with pytest.raises(ValidationError, match="name of the staff member"):
        consent.enrol(
            CustomerDetails("Someone", consent=True),
            photo_bytes("obama"),
            channel="staff",
            notice_version=consent.notice().version,
        )
    assert _nothing_stored(consent_first)


def test_kiosk_links_are_signed_and_store_scoped(consent_first: Services) -> None:
    consent = consent_service(consent_first)
    link = consent.kiosk_link("store-7")
    token = link.split("kiosk=", 1)[1]
    assert consent.verify_kiosk(token) == "store-7"
    with pytest.raises(TokenError):
        consent.verify_kiosk(token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    withdraw = consent.withdrawal_link("cus_x").split("withdraw=", 1)[1]
    with pytest.raises(TokenError, match="not a kiosk link"):
        consent.verify_kiosk(withdraw)
