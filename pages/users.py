"""Users (admins only, local backend): add, remove, reset a password, change a role."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core.auth import require
from core.errors import StoreLensError
from core.models import AuditEntry, new_id
from core.users import ROLES, UserStore
from pages import _ui

me = _ui.page_guard()
st.title("Users")
if not _ui.allowed("manage_users"):
    st.warning("Only admins manage users.")
    st.stop()
settings = _ui.settings()
store = UserStore.for_data_dir(settings.data_dir)
services = _ui.services()
_ui.show_flash()


def audit(action: str, name: str, **details: str) -> None:
    services.repos.audit.append(
        AuditEntry(new_id("aud"), datetime.now(UTC), _ui.actor(), action, f"user:{name}", dict(details))
    )


def act(action: str, name: str, done: str, fn, **details: str) -> None:
    """Run one change as the signed-in admin; audit it and flash ``done``, or show the error."""
    try:
        require(_ui.current_user(), "manage_users")
        fn()
    except StoreLensError as exc:
        st.error(str(exc))
        return
    audit(action, name, **details)
    _ui.flash(done)
    st.rerun()


users = store.list()
st.dataframe(
    [{"User": u.name, "Role": u.role, "You": "yes" if me and u.name == me.name else ""} for u in users],
    hide_index=True,
    key="users_table",
)

with st.expander("Add a user", expanded=False, icon=":material/person_add:"), st.form("user-add"):
    a, b = st.columns(2)
    name = a.text_input("User name", key="user_add_name")
    role = b.selectbox(
        "Role", ROLES, index=ROLES.index("viewer"), key="user_add_role", format_func=str.capitalize
    )
    password = a.text_input("Password (8+ characters)", type="password", key="user_add_password")
    repeat = b.text_input("Repeat password", type="password", key="user_add_repeat")
    if st.form_submit_button("Add user", key="user_add_go", type="primary"):
        if password != repeat:
            st.error("the passwords differ")
        else:
            act(
                "user_added",
                name,
                f"Added {name} ({role}).",
                lambda: store.add(name, password, role),
                role=role,
            )

st.subheader("Change a user")
names = [u.name for u in users]
picked = st.selectbox("User", names, index=None, placeholder="Choose a user", key="user_pick")
if picked is not None:
    current = store.get(picked)
    # Keys name the user, so nothing typed for one user carries over to the next.
    with st.form(f"user-role-{picked}"):
        new_role = st.selectbox(
            "Role",
            ROLES,
            index=ROLES.index(current.role),
            key=f"user_role_{picked}",
            format_func=str.capitalize,
        )
        if st.form_submit_button("Save role", key=f"user_role_go_{picked}"):
            act(
                "user_role_changed",
                picked,
                f"{picked} is now {new_role}.",
                lambda: store.set_role(picked, new_role),
                role=new_role,
            )
    with st.form(f"user-password-{picked}", clear_on_submit=True):
        a, b = st.columns(2)
        pw = a.text_input("New password", type="password", key=f"user_pw_{picked}")
        pw2 = b.text_input("Repeat", type="password", key=f"user_pw2_{picked}")
        if st.form_submit_button("Reset password", key=f"user_pw_go_{picked}"):
            if pw != pw2:
                st.error("the passwords differ")
            else:

                def reset(name: str = picked, password: str = pw) -> None:
                    store.set_password(name, password)
                    _ui.end_sessions(name, keep=me)  # signed out of every browser

                act("user_password_reset", picked, f"New password set for {picked}.", reset)
    if me is not None and picked == me.name:
        st.caption("You cannot remove yourself.")
    else:
        sure = st.checkbox(f"Yes, remove {picked}", key=f"user_rm_sure_{picked}")
        if st.button("Remove user", key=f"user_rm_go_{picked}", disabled=not sure, icon=":material/delete:"):

            def remove(name: str = picked) -> None:
                store.remove(name)
                _ui.end_sessions(name)

            act("user_removed", picked, f"Removed {picked}.", remove)
