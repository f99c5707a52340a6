"""Outbox (local mode): the approval e-mails as the approvers would receive them."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import streamlit as st

from pages import _ui

_ui.page_guard()

st.title("Outbox")
services = _ui.services()
outbox = services.outbox
if outbox is None:
    st.info("This backend sends e-mail through Amazon SES; there is no local outbox.")
    st.stop()

mails = outbox.messages()
st.caption(f"{len(mails)} message(s) in `{outbox.folder}` (newest first). The links open the Approvals page.")
if not mails:
    st.info("No e-mails yet. A new person seen by a camera produces one.")
    st.stop()


def label(i: int) -> str:
    path, msg = mails[i]
    return f"{path.name[:15]} · {msg['Subject']}"


def inline_html(msg: EmailMessage) -> str | None:
    """The HTML part with ``cid:`` images turned into data URIs so it renders here."""
    body = msg.get_body(preferencelist=("html",))
    if body is None:
        return None
    html = body.get_content()
    for part in msg.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_maintype() == "image":
            payload = part.get_payload(decode=True)
            data = base64.b64encode(payload if isinstance(payload, bytes) else b"").decode("ascii")
            html = html.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return html


index = st.selectbox("Message", range(len(mails)), format_func=label, key="outbox_pick")
path, msg = mails[index]
with st.container(border=True):
    st.markdown(f"**{msg['Subject']}**")
    st.caption(f"From {msg['From']} · To {msg['To']} · {msg['Date'] or path.name[:15]}")
    html = inline_html(msg)
    if html:
        st.html(html)
    else:
        text = msg.get_body(preferencelist=("plain",))
        st.text(text.get_content() if text else "(empty)")
    with st.expander("Plain text"):
        text = msg.get_body(preferencelist=("plain",))
        st.code(text.get_content() if text else "", language=None)
