"""The enrolment form shared by the kiosk and the staff-assisted enrolment.

The notice first, then the details, the explicit consent box and the photo;
:meth:`core.consent.ConsentService.enrol` does the rest (consent record first).
"""

from __future__ import annotations

import streamlit as st

from core.enrolment import ConsentService
from core.models import Customer, CustomerDetails
from pages import _ui

ROUND_KEY = "enrol_round"


def enrol_form(
    consent: ConsentService, *, channel: str, assisted_by: str | None, store_id: str
) -> Customer | None:
    """Render the form; return the new customer after a successful enrolment."""
    notice = consent.notice()
    # Every field's key carries the round, so the next person starts with an empty form.
    n = st.session_state.setdefault(ROUND_KEY, 0)
    with st.container(border=True):
        st.markdown(notice.text)
        st.caption(f"Notice version {notice.version}")
    name = st.text_input("Your name" if channel == "kiosk" else "Customer's name", key=f"enrol_name_{n}")
    email = st.text_input(
        "E-mail (optional: for the confirmation and the withdrawal link)", key=f"enrol_email_{n}"
    )
    loyalty = st.text_input("Loyalty card number (optional)", key=f"enrol_loyalty_{n}")
    agreed = st.checkbox(
        "I have read the notice and I explicitly consent to the use of my face "
        "to recognise me in this store.",
        key=f"enrol_consent_{n}",
    )
    source = st.radio("Photo", ["Take a photo", "Upload a photo"], horizontal=True, key=f"enrol_source_{n}")
    if source == "Take a photo":
        shot = st.camera_input("Look at the camera", key=f"enrol_camera_{n}", disabled=not agreed)
    else:
        shot = st.file_uploader("A photo of your face", type=["jpg", "jpeg", "png"], key=f"enrol_upload_{n}")
    if not st.button("Join", type="primary", key=f"enrol_submit_{n}", disabled=not agreed):
        return None
    details = CustomerDetails(name, email or None, loyalty or None, consent=agreed)
    with _ui.errors_shown():
        customer = consent.enrol(
            details,
            shot.getvalue() if shot is not None else b"",
            channel=channel,
            notice_version=notice.version,
            assisted_by=assisted_by,
            store_id=store_id,
        )
        st.session_state[ROUND_KEY] = n + 1
        return customer
    return None
