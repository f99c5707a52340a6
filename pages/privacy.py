"""Privacy: staff-assisted enrolment, the kiosk QR code, access requests by selfie
(search, export, erase), retention, and the accountability documents."""

from __future__ import annotations

import io

import streamlit as st

from core.consent import CONSENT_FIRST, day_bounds, footfall
from core.enrolment import consent_service
from core.privacy_docs import DOCUMENTS
from pages import _ui
from pages._enrol_form import enrol_form

user = _ui.page_guard()
assert user is not None
services = _ui.services()
settings = services.settings
consent = consent_service(services)

st.title("Privacy")
st.caption(
    f"Mode **{settings.privacy_mode}**"
    + (" (only consented customers are recognised)" if settings.privacy_mode == CONSENT_FIRST else "")
    + f" · customer photos kept {settings.customer_retention_days} days after the last visit"
)
if settings.privacy_mode == CONSENT_FIRST:
    today = footfall(services.repos, *day_bounds())
    st.caption(
        f"Today: {today.total} people counted, {today.visits} customer visit(s) and "
        f"{today.anonymous} anonymous sighting(s) (no face kept)"
    )
_ui.show_flash()

enrol_tab, kiosk_tab, access_tab, retention_tab, docs_tab = st.tabs(
    ["Enrol", "Kiosk link", "Access requests", "Retention", "Documents"]
)

with enrol_tab:
    if not _ui.allowed("edit_customer"):
        st.info("Only admins enrol customers.")
    else:
        st.write("Show the customer this notice; they tick the consent box themselves.")
        joined = enrol_form(consent, channel="staff", assisted_by=user.name, store_id=settings.store_id)
        if joined is not None:
            _ui.flash(f"{joined.name} enrolled (consent recorded first).")
            st.rerun()

with kiosk_tab:
    link = consent.kiosk_link(settings.store_id)
    st.write(f"Customers scan this code to join at store **{settings.store_id}**; no staff login is needed.")
    import segno

    qr = io.BytesIO()
    segno.make(link, error="m").save(qr, kind="png", scale=6)
    st.image(qr.getvalue(), width=240)
    st.code(link, language=None)
    st.download_button("Download QR code", qr.getvalue(), "storelens-kiosk.png", "image/png", key="kiosk_qr")

with access_tab:
    if not _ui.allowed("erase"):
        st.info("Only admins handle access and erasure requests.")
    else:
        st.write("Find everything about a person from a photo of them. Every search is audited.")
        selfie = st.file_uploader("The person's photo", type=["jpg", "jpeg", "png"], key="dsar_photo")
        if selfie is not None and st.button("Search", key="dsar_search"):
            with _ui.errors_shown():
                found = consent.find_by_selfie(selfie.getvalue(), actor=_ui.actor())
                st.session_state["dsar_found"] = [i.customer_id for i in found if i.customer_id]
                if not st.session_state["dsar_found"]:
                    st.info("Nobody stored matches this photo.")
        for customer_id in st.session_state.get("dsar_found", []):
            names = _ui.customer_names([customer_id])
            if customer_id not in names:
                continue
            with st.container(border=True):
                st.subheader(names[customer_id])
                records = consent.consent_records(customer_id)
                st.caption(
                    f"{customer_id} · consent: "
                    + (", ".join(f"{r.given_at:%Y-%m-%d} via {r.channel}" for r in records) or "at approval")
                )
                ready = st.session_state.get(f"dsar_zip_{customer_id}")
                if ready is None:
                    if st.button("Prepare export", key=f"dsar_export_{customer_id}"):
                        st.session_state[f"dsar_zip_{customer_id}"] = consent.export(customer_id, _ui.actor())
                        st.rerun()
                else:
                    st.download_button(
                        "Download export (zip)",
                        ready,
                        f"{customer_id}.zip",
                        "application/zip",
                        key=f"dsar_download_{customer_id}",
                    )
                if st.button("Consent withdrawn: erase", key=f"dsar_erase_{customer_id}", type="secondary"):
                    with _ui.errors_shown():
                        services.privacy.erase(customer_id, actor=_ui.actor())
                        st.session_state["dsar_found"] = []
                        _ui.flash("Erased everywhere.")
                        st.rerun()

with retention_tab:
    record_days = max(settings.customer_record_retention_days, settings.customer_retention_days)
    st.write(
        f"Every hour the retention sweep discards unapproved faces after {settings.pending_ttl_days} days, "
        f"deletes customers' photos and templates {settings.customer_retention_days} days after their "
        f"last visit and their record {record_days} days after it (their visits stay in footfall as "
        "anonymous sightings; their sales stay, unattributed). Anonymous sightings are rolled up into "
        f"hourly counts per zone after {settings.anonymous_retention_days} days."
    )
    if _ui.allowed("erase") and st.button("Run the retention sweep now", key="run_purge"):
        with _ui.errors_shown():
            report = services.privacy.purge(actor=_ui.actor())
            st.success(
                f"{len(report.expired)} unapproved identit(ies) discarded; "
                f"{len(report.retired)} customer(s) no longer recognisable; "
                f"{len(report.records_deleted)} customer record(s) deleted; "
                f"{report.sightings_rolled_up} anonymous sighting(s) rolled up."
            )

with docs_tab:
    st.write("Drafts generated from the current settings; complete and have them reviewed.")
    for filename, (title, build) in DOCUMENTS.items():
        text = build(settings)
        with st.expander(title):
            st.markdown(text)
        st.download_button(f"Download {title}", text, filename, "text/markdown", key=f"doc_{filename}")
