"""Notifier contract: OutboxNotifier and SesNotifier deliver the same MIME bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from core.ports import Notifier, OutgoingMail
from tests.aws.moto_support import REGION, client, moto

Readback = Callable[[], list[bytes]]


def _mail(subject_id: str = "pid_1", subject: str = "StoreLens: new person") -> OutgoingMail:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "storelens@example.com"
    msg["To"] = "approvals@example.com"
    msg["X-StoreLens-Pending-Id"] = subject_id
    msg.set_content("Review: https://example.com/approvals?token=abc")
    msg.add_alternative('<p><img src="cid:face0"></p>', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(b"\xff\xd8\xff\xe0fakejpeg\xff\xd9", maintype="image", subtype="jpeg", cid="<face0>")
    return OutgoingMail(
        to=("approvals@example.com",), subject=subject, mime=msg.as_bytes(), subject_id=subject_id
    )


@pytest.fixture(params=["local", "aws"])
def notifier(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Notifier, Readback]]:
    if request.param == "local":
        from core.local.outbox import OutboxNotifier

        outbox = OutboxNotifier(tmp_path / "outbox")
        yield outbox, lambda: [p.read_bytes() for p in sorted((tmp_path / "outbox").glob("*.eml"))]
        return
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from core.aws.ses import SesNotifier

    with moto():
        ses = client("ses")
        ses.verify_email_identity(EmailAddress="storelens@example.com")
        backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]

        def sent() -> list[bytes]:
            out = []
            for m in backend.sent_messages:
                raw = m.raw_data
                out.append(raw.encode("utf-8") if isinstance(raw, str) else bytes(raw))
            return out

        yield SesNotifier(client=ses), sent


def test_send_returns_distinct_ids(notifier: tuple[Notifier, Readback]) -> None:
    n, _ = notifier
    a, b = n.send(_mail()), n.send(_mail())
    assert isinstance(a, str) and a and a != b


def test_delivered_mail_is_the_built_mime(notifier: tuple[Notifier, Readback]) -> None:
    n, readback = notifier
    mail = _mail("pid_42", "StoreLens: is this Ada?")
    n.send(mail)
    [raw] = readback()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["Subject"] == "StoreLens: is this Ada?"
    assert msg["X-StoreLens-Pending-Id"] == "pid_42"
    body = msg.get_body(("plain",))
    assert body is not None and "token=abc" in body.get_content()
    images = [p for p in msg.walk() if p.get_content_type() == "image/jpeg"]
    assert images and images[0].get_payload(decode=True).startswith(b"\xff\xd8")


def test_forget_returns_a_count(notifier: tuple[Notifier, Readback]) -> None:
    n, _ = notifier
    n.send(_mail("pid_7"))
    n.send(_mail("pid_8"))
    gone = n.forget("pid_7")
    assert isinstance(gone, int) and gone >= 0
    assert n.forget("pid_nobody") == 0
