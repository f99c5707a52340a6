"""Customers: search, profile (faces, visits, spend), edit, add a photo, merge, erase."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import plotly.express as px
import streamlit as st

from core.errors import NotFoundError, StoreLensError
from pages import _ui

_ui.page_guard()

TIMELINE = 500  # visits drawn on the timeline (a regular can have thousands)

st.title("Customers")
services = _ui.services()
can_edit = _ui.allowed("edit_customer")
_ui.show_flash()

query = st.text_input("Search by name, e-mail or loyalty id", key="cust_search")
found = services.customers.list(query or None, limit=500)
st.caption(
    f"{len(found)} customer(s){' (first 500)' if len(found) == 500 else ''} · "
    f"{services.repos.customers.count()} in total"
)
if not found:
    st.info("No customers yet: approve someone on the Approvals page.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "name": c.name,
            "e-mail": c.email or "",
            "loyalty id": c.loyalty_id or "",
            "consent": c.consent,
            "since": c.created_at.strftime("%Y-%m-%d"),
            "id": c.customer_id,
        }
        for c in found
    ]
)
st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(table)), key="cust_table")

ids = [c.customer_id for c in found]
names = {c.customer_id: f"{c.name} ({c.loyalty_id or c.customer_id})" for c in found}
wanted = st.query_params.get("customer")
index = ids.index(wanted) if wanted in ids else 0
chosen_id = st.selectbox("Profile", ids, index=index, format_func=names.__getitem__, key="cust_pick")
st.query_params["customer"] = chosen_id

try:
    profile = services.customers.profile(chosen_id)
except NotFoundError:
    st.warning("This customer no longer exists.")
    st.stop()
customer = profile.customer
# Every widget that edits this customer has a key naming them: Streamlit keeps a
# widget's value per key, so a shared key would carry one customer's values onto
# the next one picked (and Save would write them there).
cid = customer.customer_id

st.header(customer.name)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Visits", len(profile.visits))
m2.metric("Spend", f"{profile.spend_cents / 100:,.2f}")
m3.metric("Photos", len(profile.faces))
m4.metric("Consent", f"{customer.consent_at:%Y-%m-%d}" if customer.consent_at else "no")
st.caption(
    f"`{customer.customer_id}` · e-mail {customer.email or '-'} · loyalty {customer.loyalty_id or '-'}"
    + (f" · notes: {customer.notes}" if customer.notes else "")
)

tab_faces, tab_visits, tab_spend, tab_edit = st.tabs(["Faces", "Visits", "Spend", "Edit / merge / erase"])

with tab_faces:
    faces = sorted(profile.faces, key=lambda f: f.captured_at, reverse=True)[:24]
    if not faces:
        st.caption("No photos.")
    for start in range(0, len(faces), 8):
        for col, face in zip(st.columns(8), faces[start : start + 8], strict=False):
            with col:
                _ui.show_crop(face.crop_key, caption=f"{face.camera_id} {face.captured_at:%m-%d %H:%M}")

with tab_visits:
    if not profile.visits:
        st.caption("No visits recorded.")
    else:
        visits = pd.DataFrame(
            [
                {
                    "started": v.started_at,
                    "camera": v.camera_id,
                    "zone": v.zone,
                    "dwell (s)": round(v.dwell_seconds),
                }
                for v in sorted(profile.visits, key=lambda v: v.started_at, reverse=True)[:TIMELINE]
            ]
        )
        if len(profile.visits) > TIMELINE:
            st.caption(f"The latest {TIMELINE} of {len(profile.visits):,} visits.")
        fig = px.scatter(
            visits,
            x="started",
            y="zone",
            size="dwell (s)",
            size_max=18,
            color="camera",
            title="Visit timeline (UTC)",
        )
        st.plotly_chart(fig, key="cust_timeline")
        st.dataframe(visits.head(500), hide_index=True, key="cust_visits")

with tab_spend:
    if not profile.transactions:
        st.caption("No linked purchases.")
    else:
        tx = pd.DataFrame(
            [
                {
                    "when": t.occurred_at,
                    "amount": t.amount_cents / 100,
                    "currency": t.currency,
                    "transaction": t.transaction_id,
                }
                for t in profile.transactions
            ]
        ).sort_values("when")
        monthly = (
            tx.assign(month=tx["when"].dt.strftime("%Y-%m")).groupby("month", as_index=False)["amount"].sum()
        )
        st.plotly_chart(px.bar(monthly, x="month", y="amount", title="Spend per month"), key="cust_spend")
        st.dataframe(tx.sort_values("when", ascending=False), hide_index=True, key="cust_tx")

with tab_edit:
    if not can_edit:
        st.caption("Viewers cannot change customers.")
    else:
        with st.form(f"edit-customer-{cid}"):
            a, b = st.columns(2)
            name = a.text_input("Name *", customer.name, key=f"edit_name_{cid}")
            email = b.text_input("E-mail", customer.email or "", key=f"edit_email_{cid}")
            loyalty = a.text_input("Loyalty id", customer.loyalty_id or "", key=f"edit_loyalty_{cid}")
            notes = b.text_input("Notes", customer.notes, key=f"edit_notes_{cid}")
            if st.form_submit_button("Save", key=f"edit_save_{cid}", type="primary"):
                try:
                    services.customers.update(
                        replace(
                            customer, name=name, email=email or None, loyalty_id=loyalty or None, notes=notes
                        ),
                        actor=_ui.actor(),
                    )
                except StoreLensError as exc:
                    st.error(str(exc))
                else:
                    _ui.flash("Saved.")
                    st.rerun()

        st.subheader("Add a photo")
        upload = st.file_uploader(
            "A photo with only this person's face", type=["jpg", "jpeg", "png"], key=f"add_photo_{cid}"
        )
        if upload is not None and st.button("Add photo", key=f"add_photo_go_{cid}"):
            with _ui.errors_shown():
                services.customers.add_photo(customer.customer_id, upload.getvalue(), actor=_ui.actor())
                _ui.flash("Photo added.")
                st.rerun()

        st.subheader("Merge another customer into this one")
        others = [c for c in found if c.customer_id != customer.customer_id]
        if others:
            other = st.selectbox(
                "Duplicate to fold in (its faces, visits and purchases move here)",
                others,
                format_func=lambda c: f"{c.name} ({c.loyalty_id or c.customer_id})",
                key=f"merge_other_{cid}",
            )
            sure = st.checkbox(
                f"Yes, {other.name} is the same person as {customer.name}", key=f"merge_sure_{cid}"
            )
            if st.button("Merge", key=f"merge_go_{cid}", disabled=not sure):
                with _ui.errors_shown():
                    services.customers.merge(customer.customer_id, other.customer_id, actor=_ui.actor())
                    _ui.flash(f"Merged {other.name} into {customer.name}.")
                    st.rerun()

        st.subheader("Erase")
        if _ui.allowed("erase"):
            st.caption(
                "Removes photos, face templates, visits and links to purchases everywhere. Cannot be undone."
            )
            typed = st.text_input(f"Type {customer.name!r} to confirm", key=f"erase_confirm_{cid}")
            if st.button(
                "Erase this customer",
                key=f"erase_go_{cid}",
                type="primary",
                disabled=typed.strip() != customer.name,
            ):
                with _ui.errors_shown():
                    report = services.privacy.erase(customer.customer_id, actor=_ui.actor())
                    st.query_params.pop("customer", None)
                    _ui.flash(f"Erased: {report.faces} photos, {report.visits} visits removed.")
                    st.rerun()
