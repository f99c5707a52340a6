"""The approval e-mail: one MIME message, shared by the outbox and SES.

The message has a plain-text part and an HTML part whose face images are
inline (``cid:``) attachments, so it renders without fetching anything. Each
action link carries its own single-use token (see :mod:`core.tokens`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlencode

from core.models import PendingIdentity, PendingKind
from core.ports import OutgoingMail

#: The link actions offered in the e-mail, with their button labels.
MAIL_ACTIONS: dict[PendingKind, tuple[tuple[str, str], ...]] = {
    PendingKind.NEW: (
        ("approve", "Review and approve"),
        ("reject", "Reject"),
        ("not_a_customer", "Not a customer (do not track)"),
    ),
    PendingKind.REVIEW: (
        ("confirm", "Yes, it is them"),
        ("not_this_person", "Not this person"),
    ),
}


def approval_link(public_url: str, token: str) -> str:
    """The dashboard URL that opens the Approvals page on this token."""
    return f"{public_url.rstrip('/')}/approvals?{urlencode({'token': token})}"


def build_customer_mail(
    *,
    customer_id: str,
    to: str,
    sender: str,
    subject: str,
    body: str,
    withdraw_url: str,
) -> OutgoingMail:
    """An e-mail to a customer. Every one carries the signed withdrawal link.

    Build every customer-facing mail here, so none can go out without the
    link (``core.consent.ConsentService.withdrawal_link`` makes it).
    """
    if not withdraw_url:
        raise ValueError("a customer e-mail needs its withdrawal link")
    footer = (
        "You can withdraw your consent at any time; your photos, face template and visit "
        f"history are then erased: {withdraw_url}"
    )
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="storelens.local")
    msg["X-StoreLens-Customer-Id"] = customer_id
    msg["List-Unsubscribe"] = f"<{withdraw_url}>"
    msg.set_content(f"{body}\n\n--\n{footer}\n")
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
    msg.add_alternative(
        f"<html><body>{paragraphs}<hr><p style='color:#666'>You can withdraw your consent at any "
        "time; your photos, face template and visit history are then erased: "
        f'<a href="{html.escape(withdraw_url)}">withdraw my consent</a></p></body></html>',
        subtype="html",
    )
    return OutgoingMail(
        to=(to,), subject=subject, mime=msg.as_bytes(), subject_id=customer_id, meta={"kind": "customer"}
    )


def build_approval_mail(
    *,
    pending: PendingIdentity,
    crops: Sequence[bytes],
    links: dict[str, str],
    sender: str,
    recipients: Sequence[str],
    suggested_name: str | None = None,
    seen_summary: str = "",
) -> OutgoingMail:
    """Build the e-mail for one pending identity (at most 4 crops inline)."""
    msg = EmailMessage()
    if pending.kind is PendingKind.REVIEW and suggested_name:
        subject = f"StoreLens: is this {suggested_name}? ({pending.face_count} sightings)"
    else:
        subject = f"StoreLens: new person to review ({pending.face_count} sightings)"
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Message-ID"] = make_msgid(domain="storelens.local")
    msg["X-StoreLens-Pending-Id"] = pending.pending_id

    labels = dict(MAIL_ACTIONS[pending.kind])
    text_lines = [subject, "", seen_summary, ""]
    text_lines += [f"{labels.get(a, a)}: {url}" for a, url in links.items()]
    text_lines += ["", "Each link works once and expires. Approving records the person's consent."]
    msg.set_content("\n".join(text_lines))

    cids = [make_msgid(domain="storelens.local") for _ in crops[:4]]
    images = "".join(
        f'<img src="cid:{cid[1:-1]}" alt="face {i + 1}" width="120" style="margin:4px;border-radius:6px">'
        for i, cid in enumerate(cids)
    )
    style = (
        "display:inline-block;margin:6px;padding:8px 14px;background:#0b5;color:#fff;"
        "text-decoration:none;border-radius:4px"
    )
    buttons = "".join(
        f'<a href="{html.escape(url)}" style="{style}">{html.escape(labels.get(a, a))}</a>'
        for a, url in links.items()
    )
    body = (
        f"<html><body><h2>{html.escape(subject)}</h2><p>{html.escape(seen_summary)}</p>"
        f"<div>{images}</div><div>{buttons}</div>"
        "<p style='color:#666'>Each link works once and expires. "
        "Approving records the person's consent.</p></body></html>"
    )
    msg.add_alternative(body, subtype="html")
    # add_alternative made the message multipart/alternative: [plain, html].
    html_part = list(msg.iter_parts())[1]
    for cid, crop in zip(cids, crops[:4], strict=False):
        html_part.add_related(crop, maintype="image", subtype="jpeg", cid=cid)
    return OutgoingMail(
        to=tuple(recipients),
        subject=subject,
        mime=msg.as_bytes(),
        subject_id=pending.pending_id,
        meta={"kind": pending.kind.value},
    )
