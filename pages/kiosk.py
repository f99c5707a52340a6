"""Kiosk: a customer joins (notice, explicit consent, selfie) or withdraws consent.

Opened without staff login, only through a signed link: ``/?kiosk=<token>``
(store-scoped, printed as a QR code on the Privacy page) or
``/?withdraw=<token>`` (in every e-mail to a customer).
"""

from __future__ import annotations

import streamlit as st

from core.enrolment import consent_service
from core.errors import StoreLensError
from pages import _ui
from pages._enrol_form import enrol_form

_ui.page_guard(login_required=False)
consent = consent_service(_ui.services())

if "withdraw" in st.query_params:
    st.title("Withdraw your consent")
    token = st.query_params["withdraw"]
    try:
        customer = consent.verify_withdrawal(token)
    except StoreLensError as exc:
        st.error(f"This link cannot be used: {exc}")
        st.stop()
    st.write(
        f"{customer.name.split()[0]}, withdrawing your consent erases your photos, your face template, "
        "your visit history and the link between you and your purchases. You will no longer be recognised."
    )
    if st.button("Withdraw my consent and erase my data", type="primary", key="withdraw_confirm"):
        with _ui.errors_shown():
            consent.withdraw(token)
            st.query_params.clear()
            st.success("Done: your consent is withdrawn and your data is erased.")
            st.stop()
    st.stop()

st.title("Join: be recognised in this store")
try:
    store_id = consent.verify_kiosk(st.query_params.get("kiosk", ""))
except StoreLensError as exc:
    st.error(f"This kiosk link cannot be used: {exc}. Ask staff for a new one.")
    st.stop()

_ui.show_flash()
joined = enrol_form(consent, channel="kiosk", assisted_by=None, store_id=store_id)
if joined is not None:
    # A fresh, empty form for the next person, with the welcome above it.
    _ui.flash(f"Welcome, {joined.name}! You can withdraw your consent at any time.")
    st.rerun()
