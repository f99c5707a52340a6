"""Customers: search, profile (faces, visits, spend), edit, add a photo, merge, erase."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.consent import CONSENT_FIRST
from core.enrolment import consent_service
from core.errors import NotFoundError, StoreLensError
from pages import _ui
from pages._enrol_form import enrol_form

_ui.page_guard()

TIMELINE = 500  # visits drawn on the timeline (a regular can have thousands)

st.title("Customers")
services = _ui.services()
can_edit = _ui.allowed("edit_customer")
_ui.show_flash()

# A toggle, not an expander: the form's widgets exist only while it is open, so its
# labels never shadow the profile's edit form below.
if can_edit and st.toggle("Enrol a customer", key="enrol_open", value=services.repos.customers.count() == 0):
    consent_first = services.settings.privacy_mode == CONSENT_FIRST
    with st.container(border=True):
        if consent_first:
            # Consent-first: no plain form. The person reads the notice and ticks the
            # consent box themselves; the consent record is written before the template.
            st.write("Show the customer this notice; they tick the consent box themselves.")
            user = _ui.current_user()
            joined = enrol_form(
                consent_service(services),
                channel="staff",
                assisted_by=user.name if user else None,
                store_id=services.settings.store_id,
            )
            if joined is not None:
                _ui.flash(f"{joined.name} enrolled (consent recorded first).")
                st.rerun()
        else:
            with st.form("enrol_plain", clear_on_submit=True):
                a, b = st.columns(2)
                new_name = a.text_input("New customer's name *", key="enrol_plain_name")
                new_email = b.text_input("Their e-mail", key="enrol_plain_email")
                new_loyalty = a.text_input("Their loyalty id", key="enrol_plain_loyalty")
                photos = b.file_uploader(
                    "Photos with only this person's face",
                    type=["jpg", "jpeg", "png"],
                    accept_multiple_files=True,
                    key="enrol_plain_photos",
                )
                agreed = st.checkbox("The customer consented to being recognised", key="enrol_plain_consent")
                if st.form_submit_button("Enrol", type="primary"):
                    if not agreed:
                        st.error("Record the customer's consent first.")
                    else:
                        with _ui.errors_shown():
                            made = services.customers.enroll(
                                new_name,
                                [p.getvalue() for p in photos or []],
                                email=new_email or None,
                                loyalty_id=new_loyalty or None,
                                actor=_ui.actor(),
                                labels=[p.name for p in photos or []],
                            )
                            _ui.flash(f"{made.name} enrolled.")
                            st.rerun()

query = st.text_input("Search by name, e-mail or loyalty id", key="cust_search")
found = services.customers.list(query or None, limit=500)
total = services.repos.customers.count()
if not found:
    if query and total:
        st.info(f"No customer matches {query!r}. Try part of a name, an e-mail or a loyalty id.")
    else:
        st.info(
            "No customers yet: enrol someone above."
            if services.settings.privacy_mode == CONSENT_FIRST
            else "No customers yet: approve someone on the Approvals page or enrol them above."
        )
    st.stop()
st.caption(
    f"{len(found)} customer(s){' (first 500)' if len(found) == 500 else ''} · {total} in total · "
    "click a row to open the profile"
)

ids = [c.customer_id for c in found]
summary = _ui.analytics().customer_summary(ids).set_index("customer_id")
zone = ZoneInfo(_ui.tz())  # once: settings are read from the environment on each call


def _local(t: datetime, fmt: str) -> str:
    return t.astimezone(zone).strftime(fmt)


# Column by column (a .at lookup per cell cost ~0.4 s for 500 customers).
rows = summary.reindex(ids)
table = pd.DataFrame(
    {
        "Name": [c.name for c in found],
        "E-mail": [c.email or "" for c in found],
        "Loyalty id": [c.loyalty_id or "" for c in found],
        "Store visits": rows["store_visits"].fillna(0).astype(int).tolist(),
        "Last seen": pd.to_datetime(rows["last_seen"], utc=True)
        .dt.tz_convert(zone)
        .dt.strftime("%Y-%m-%d %H:%M")
        .fillna("")
        .tolist(),
        "Spend": (rows["spend_cents"].fillna(0) / 100).tolist(),
        "Consent": ["yes" if c.consent else "no" for c in found],
        "Customer since": [_local(c.created_at, "%Y-%m-%d") for c in found],
    }
)
clicked = st.dataframe(
    table,
    hide_index=True,
    height=min(400, 38 + 35 * len(table)),
    key="cust_table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={"Spend": st.column_config.NumberColumn(format="%.2f")},
)
st.download_button(
    "Download CSV",
    table.to_csv(index=False).encode(),
    file_name="storelens-customers.csv",
    mime="text/csv",
    key="cust_table_csv",
    icon=":material/download:",
)
rows = clicked.selection.rows if clicked is not None else []
if rows and rows[0] < len(ids) and st.session_state.get("cust_clicked") != ids[rows[0]]:
    # A newly clicked row opens that profile (the pick box below follows).
    st.session_state["cust_clicked"] = ids[rows[0]]
    st.session_state["cust_pick"] = ids[rows[0]]

names = {c.customer_id: f"{c.name} ({c.loyalty_id or c.email or 'no loyalty id'})" for c in found}
wanted = st.query_params.get("customer")
if st.session_state.get("cust_pick") not in ids:
    st.session_state.pop("cust_pick", None)
index = ids.index(wanted) if wanted in ids else 0
chosen_id = st.selectbox("Profile", ids, index=index, format_func=names.__getitem__, key="cust_pick")
st.query_params["customer"] = chosen_id

try:
    # The latest zone visits only: a regular has tens of thousands; the counts
    # come from the summary above (materialised store visits).
    profile = services.customers.profile(chosen_id, visit_limit=TIMELINE)
except NotFoundError:
    st.warning("This customer no longer exists.")
    st.stop()
customer = profile.customer
# Every widget that edits this customer has a key naming them: Streamlit keeps a
# widget's value per key, so a shared key would carry one customer's values onto
# the next one picked (and Save would write them there).
cid = customer.customer_id

st.header(customer.name)
stay_count = int(summary.at[cid, "store_visits"])
last_seen = None if pd.isna(summary.at[cid, "last_seen"]) else summary.at[cid, "last_seen"].to_pydatetime()
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric(
    "Store visits", f"{stay_count:,}", help="Entry-to-exit stays (sightings within 30 minutes join one)."
)
m2.metric("Last seen", _ui.local(last_seen, "%d %b") if last_seen else "never")
m3.metric("Spend", f"{profile.spend_cents / 100:,.2f}")
m4.metric("Photos", len(profile.faces))
m5.metric(
    "Consent",
    _ui.local(customer.consent_at, "%d %b") if customer.consent_at else ("yes" if customer.consent else "no"),
)
st.caption(
    f"E-mail {customer.email or '-'} · loyalty id {customer.loyalty_id or '-'}"
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
                _ui.show_crop(
                    face.crop_key, caption=f"{face.zone} {_ui.local(face.captured_at, '%d %b %H:%M')}"
                )

with tab_visits:
    if not profile.visits:
        st.caption("No visits recorded.")
    else:
        visits = pd.DataFrame(
            [
                {
                    "Seen at": v.started_at.astimezone(zone).replace(tzinfo=None),
                    "Zone": v.zone,
                    "Camera": v.camera_id,
                    "Minutes": round(v.dwell_seconds / 60, 1),
                }
                for v in sorted(profile.visits, key=lambda v: v.started_at, reverse=True)[:TIMELINE]
            ]
        )
        if len(profile.visits) >= TIMELINE:
            st.caption(f"The latest {TIMELINE} zone visits.")
        # The biggest dot 18 px across, as plotly.express's size_max did.
        sizeref = 2.0 * float(visits["Minutes"].clip(lower=0.5).max()) / 18**2
        # graph_objects, one trace per zone: plotly.express spent ~0.1 s on frame handling here.
        fig = go.Figure()
        for zone_name, part in visits.groupby("Zone", sort=True):
            fig.add_scatter(
                x=part["Seen at"],
                y=part["Zone"],
                mode="markers",
                name=str(zone_name),
                marker={"size": part["Minutes"].clip(lower=0.5), "sizemode": "area", "sizeref": sizeref},
                customdata=part[["Minutes", "Camera"]].to_numpy(),
                hovertemplate="%{x|%d %b %H:%M}, %{y}: %{customdata[0]} min (%{customdata[1]})"
                "<extra></extra>",
            )
        fig.update_layout(title="Where and when they were seen (dot size: time in the zone)")
        fig.update_xaxes(title=f"When ({_ui.tz()})")
        fig.update_yaxes(title="Zone")
        fig.update_layout(showlegend=False)
        st.plotly_chart(fig, key="cust_timeline")
        _ui.table(visits, key="cust_visits", filename=f"visits-{customer.name}", hide_index=True)

with tab_spend:
    if not profile.transactions:
        st.caption("No linked purchases.")
    else:
        tx = pd.DataFrame(
            [
                {
                    "When": t.occurred_at.astimezone(zone).replace(tzinfo=None),
                    "Amount": t.amount_cents / 100,
                    "Currency": t.currency,
                    "Receipt": t.transaction_id,
                }
                for t in profile.transactions
            ]
        ).sort_values("When")
        monthly = (
            tx.assign(Month=tx["When"].dt.strftime("%Y-%m")).groupby("Month", as_index=False)["Amount"].sum()
        )
        fig = go.Figure(go.Bar(x=monthly["Month"].tolist(), y=monthly["Amount"].tolist(), name="Spend"))
        fig.update_layout(title="Spend per month")
        fig.update_xaxes(type="category", title="Month")
        fig.update_yaxes(title="Spend")
        st.plotly_chart(fig, key="cust_spend")
        _ui.table(
            tx.sort_values("When", ascending=False),
            key="cust_tx",
            filename=f"purchases-{customer.name}",
            hide_index=True,
        )

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

        st.subheader("Merge a duplicate into this customer")
        others = [c for c in found if c.customer_id != cid]
        if others:
            other = st.selectbox(
                "Duplicate to fold in (its photos, visits and purchases move here)",
                others,
                index=None,
                placeholder="Choose the duplicate",
                format_func=lambda c: f"{c.name} ({c.loyalty_id or c.email or 'no loyalty id'})",
                key=f"merge_other_{cid}",
            )
            if other is not None:
                mine = max(profile.faces, key=lambda f: f.captured_at, default=None)
                try:
                    theirs_faces = services.customers.profile(other.customer_id, visit_limit=0).faces
                except NotFoundError:
                    theirs_faces = []
                theirs = max(theirs_faces, key=lambda f: f.captured_at, default=None)
                a, b, _rest = st.columns([1, 1, 3])
                with a:
                    st.caption(f"{customer.name} (kept)")
                    _ui.show_crop(mine.crop_key if mine else None)
                with b:
                    st.caption(f"{other.name} (folded in)")
                    _ui.show_crop(theirs.crop_key if theirs else None)
            sure = st.checkbox(
                f"Yes, {other.name} is the same person as {customer.name}"
                if other is not None
                else "Yes, they are the same person",
                key=f"merge_sure_{cid}_{other.customer_id if other is not None else ''}",
                disabled=other is None,
            )
            if st.button("Merge", key=f"merge_go_{cid}", disabled=not (sure and other is not None)):
                assert other is not None
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
