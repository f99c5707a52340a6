"""Audit log (admins only): who approved, merged, edited, erased, signed in... and when."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _ui

_ui.page_guard()
st.title("Audit log")
if not _ui.allowed("manage_users"):
    st.warning("Only admins can read the audit log.")
    st.stop()

ACTIONS = {
    "approve": "approved a new customer",
    "reject": "rejected (photos deleted)",
    "not_a_customer": "marked not a customer",
    "confirm": "confirmed a returning customer",
    "not_this_person": "said: not this person",
    "merge": "merged",
    "erase": "erased a customer",
    "update": "edited a customer",
    "enroll": "enrolled a customer",
    "add_photo": "added a photo",
    "user_added": "added a user",
    "user_removed": "removed a user",
    "user_role_changed": "changed a role",
    "user_password_reset": "reset a password",
}
services = _ui.services()
left, right = st.columns([2, 1])
search = left.text_input("Filter by who, what or whom", key="audit_search")
limit = right.selectbox("Show", [200, 1000, 5000], key="audit_limit")
entries = services.repos.audit.list(limit=int(limit))
names = _ui.customer_names([e.subject_id for e in entries if e.subject_id.startswith("cus")])
rows = [
    {
        "When": _ui.local(e.at, "%Y-%m-%d %H:%M:%S"),
        "Who": e.actor.removeprefix("dashboard:"),
        "What": ACTIONS.get(e.action, e.action.replace("_", " ")),
        "Whom": names.get(e.subject_id)
        or ("a person in the approval queue" if e.subject_id.startswith("pid") else None)
        or ("an erased customer" if e.subject_id.startswith("cus") else e.subject_id.removeprefix("user:")),
        "Details": ", ".join(f"{k}: {v}" for k, v in sorted(e.details.items())),
    }
    for e in entries
]
table = pd.DataFrame(rows, columns=["When", "Who", "What", "Whom", "Details"])
if search:
    hit = table.apply(lambda r: search.lower() in " ".join(map(str, r)).lower(), axis=1)
    table = table[hit] if len(table) else table
if table.empty:
    st.info(f"No audit entries match {search!r}." if search else "Nothing has been recorded yet.")
else:
    st.caption(f"The latest {len(table):,} entries, newest first; times in {_ui.tz()}.")
    _ui.table(table, key="audit_table", filename="audit-log", hide_index=True)
