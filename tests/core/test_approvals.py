"""Approval e-mails and their signed links, read back from the outbox."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from core.bootstrap import Services
from core.errors import ConflictError, TokenError, ValidationError
from core.models import CustomerDetails, PendingStatus
from core.ports import Decision
from core.tokens import TokenSigner
from tests.support.events import make_event
from tests.support.photos import photo_bytes

DETAILS = CustomerDetails("Joe Biden", "joe@example.com", "L-46", consent=True, notes="prefers decaf")


def _links(services: Services) -> dict[str, str]:
    """Action -> token, parsed from the newest outbox mail's HTML part."""
    (_path, msg), *_ = services.notifier.messages()
    html = msg.get_body(preferencelist=("html",)).get_content()
    tokens = {}
    for url in re.findall(r'href="([^"]+)"', html):
        token = parse_qs(urlparse(url.replace("&amp;", "&")).query)["token"][0]
        tokens[services.approvals.signer.verify(token).action] = token
    return tokens


def test_mail_has_inline_face_and_one_link_per_action(services: Services) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    ((path, msg),) = services.notifier.messages()
    assert result.pending_id in path.name
    assert msg["X-StoreLens-Pending-Id"] == result.pending_id
    images = [p for p in msg.walk() if p.get_content_type() == "image/jpeg"]
    assert len(images) == 1 and images[0]["Content-ID"]
    links = _links(services)
    assert set(links) == {"approve", "reject", "not_a_customer"}
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert f"cid:{images[0]['Content-ID'][1:-1]}" in html
    assert "http://localhost:8501/approvals?token=" in html


def test_approve_through_the_link_once(services: Services) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    token = _links(services)["approve"]
    claims = services.approvals.decide_with_token(token, Decision("approve", "mail", DETAILS))
    assert claims.pending_id == result.pending_id
    pending = services.approvals.get(result.pending_id)
    assert pending.status is PendingStatus.APPROVED
    assert services.customers.get(pending.customer_id).loyalty_id == "L-46"
    with pytest.raises(TokenError, match="already been used"):
        services.approvals.decide_with_token(token, Decision("approve", "mail", DETAILS))


def test_link_grants_only_its_own_action(services: Services) -> None:
    services.ingest.ingest(make_event(photo_bytes("biden")))
    token = _links(services)["reject"]
    with pytest.raises(ValidationError, match="this link is for 'reject'"):
        services.approvals.decide_with_token(token, Decision("approve", "mail", DETAILS))


def test_forged_and_expired_links_are_refused(services: Services) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    forged = TokenSigner("not-our-secret").issue(result.pending_id, "reject", 3600)
    with pytest.raises(TokenError, match="bad signature"):
        services.approvals.decide_with_token(forged, Decision("reject", "attacker"))
    expired = services.approvals.signer.issue(result.pending_id, "reject", ttl_seconds=-1)
    with pytest.raises(TokenError, match="expired"):
        services.approvals.decide_with_token(expired, Decision("reject", "mail"))
    assert services.approvals.get(result.pending_id).status is PendingStatus.PENDING


def test_second_decision_on_the_same_identity_is_a_conflict(services: Services) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    links = _links(services)
    services.approvals.decide_with_token(links["reject"], Decision("reject", "mail"))
    with pytest.raises(ConflictError, match="already decided"):
        services.approvals.decide_with_token(links["approve"], Decision("approve", "mail", DETAILS))
    with pytest.raises(ConflictError):
        services.approvals.decide(result.pending_id, Decision("reject", "x"))


@pytest.mark.parametrize(
    ("details", "message"),
    [
        (None, "needs the customer's details"),
        (CustomerDetails("  ", consent=True), "name is required"),
        (CustomerDetails("Joe", email="joe-at-example", consent=True), "is not an e-mail address"),
        (CustomerDetails("Joe", consent=False), "consent is required"),
    ],
)
def test_approve_validates_details(services: Services, details: CustomerDetails | None, message: str) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    with pytest.raises(ValidationError, match=message):
        services.approvals.decide(result.pending_id, Decision("approve", "tester", details))
    assert services.approvals.get(result.pending_id).status is PendingStatus.PENDING


def test_merge_pending_into_existing_customer_and_merge_customers(services: Services) -> None:
    joe = services.customers.enroll("Joe Biden", [photo_bytes("biden")], loyalty_id="L-1", actor="t")
    stranger = services.ingest.ingest(make_event(photo_bytes("obama")))
    services.approvals.decide(stranger.pending_id, Decision("merge", "tester", customer_id=joe.customer_id))
    assert services.approvals.get(stranger.pending_id).status is PendingStatus.MERGED
    assert len(services.repos.faces.by_customer(joe.customer_id)) == 2

    dup = services.customers.enroll("B. Obama", [photo_bytes("obama2")], loyalty_id="L-2", actor="t")
    kept = services.customers.merge(joe.customer_id, dup.customer_id, actor="tester")
    assert kept.customer_id == joe.customer_id
    assert [c.customer_id for c in services.customers.list()] == [joe.customer_id]
    assert len(services.repos.faces.by_customer(joe.customer_id)) == 3
    externals = {f.external_id for f in services.faces.list_faces(services.settings.collection_id)}
    assert externals == {joe.customer_id}
