"""Log in (the only page reachable while signed out, at every page's address).

A right password (or setup code) ends in :func:`pages._ui.signed_in`: with
``app.py``'s session routes it hands the browser a one-time ticket for
``/session/start``, which sets the HttpOnly cookie and opens the page that was
asked for. On the Cognito backend with an ``[auth]`` secret the page offers
Streamlit's OIDC login (``st.login``) instead of a password form.
"""

from __future__ import annotations

import streamlit as st

from core.auth import create_first_admin
from core.aws.cognito import NewPasswordRequiredError
from core.errors import AuthError, StoreLensError
from pages import _ui

_ui.page_guard(False)

settings = _ui.settings()

st.title("StoreLens")
if st.session_state.get(_ui.TOKEN_KEY):
    st.info("Log in to open the approval link.")
if st.query_params.get("signin") == "expired":
    st.warning("That sign-in did not complete (it is valid for a minute, once). Please log in again.")

if _ui.oidc_login():
    st.subheader("Log in")
    st.caption("Staff sign in with their Amazon Cognito account; admins are members of the `admin` group.")
    if st.button("Log in with Cognito", key="oidc_login", type="primary", icon=":material/login:"):
        st.login()
    st.stop()

authenticator = _ui.authenticator()
# While there are no users the authenticator keeps a setup code for the first admin.
first_run = authenticator.setup_code() is not None

if first_run:
    st.subheader("Create the first administrator")
    st.caption(
        "No dashboard users exist yet. Enter the setup code printed in the terminal running the "
        "dashboard (also in the data dir's `setup-code` file), or run "
        "`storelens users add NAME --role admin` and reload."
    )
    with st.form("first-admin"):
        code = st.text_input("Setup code", key="setup_code")
        name = st.text_input("Admin user name", key="setup_name")
        password = st.text_input("Password (8+ characters)", type="password", key="setup_password")
        repeat = st.text_input("Repeat password", type="password", key="setup_repeat")
        if st.form_submit_button("Create administrator", key="setup_submit", type="primary"):
            try:
                user = create_first_admin(
                    settings.data_dir,
                    code,
                    name,
                    password,
                    repeat,
                    limiter=_ui.limiter(),
                    client=st.context.ip_address or "",
                )
            except StoreLensError as exc:
                st.error(str(exc))
            else:
                _ui.signed_in(user)
elif st.session_state.get("cognito_challenge") is not None:
    # aws backend, first sign-in of a user made with admin-create-user.
    challenge = st.session_state["cognito_challenge"]
    st.subheader("Choose a new password")
    st.caption(f"First sign-in for {challenge.username}: replace the temporary password.")
    with st.form("new-password"):
        new = st.text_input("New password", type="password", key="new_password", autocomplete="new-password")
        again = st.text_input("Repeat new password", type="password", key="new_password_repeat")
        if st.form_submit_button("Set password and log in", key="new_password_submit", type="primary"):
            try:
                if new != again:
                    raise AuthError("the passwords do not match")
                user = _ui.authenticator().set_new_password(challenge, new)  # type: ignore[attr-defined]
            except StoreLensError as exc:
                st.error(str(exc))
            else:
                del st.session_state["cognito_challenge"]
                _ui.signed_in(user)
else:
    st.subheader("Log in")
    with st.form("login"):
        username = st.text_input("User name", key="login_user", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        if st.form_submit_button("Log in", key="login_submit", type="primary"):
            try:
                user = authenticator.login(username, password, client=st.context.ip_address or "")
            except NewPasswordRequiredError as exc:
                st.session_state["cognito_challenge"] = exc
                st.rerun()
            except StoreLensError as exc:
                st.error(str(exc))
            else:
                _ui.signed_in(user)
    if authenticator.kind == "cognito":
        st.caption("Signing in with your Amazon Cognito account; admins are members of the `admin` group.")
