"""StoreLens dashboard frame, served by ``app.py`` (``streamlit run app.py``).

The frame: page config, the login gate, and ``st.navigation`` over the page
scripts in ``pages/``. ``st.navigation`` is called on *every* run: logged out,
every page URL (``/customers``, ``/approvals?token=...``) resolves to the login
page, so no page can be opened without signing in, no "Page not found" shows,
and the address asked for is where the browser lands after login (without the
call Streamlit would fall back to serving the ``pages/`` folder).

Who is signed in is decided at the top of every run (``_ui.resolve_user``):
from the HttpOnly session cookie when ``app.py`` serves the session routes,
from Streamlit's OIDC login on the Cognito backend.
"""

from __future__ import annotations

import sys
from urllib.parse import urlencode

import streamlit as st

from pages import _ui

st.set_page_config(page_title="StoreLens", page_icon=":material/storefront:", layout="wide")

settings = _ui.settings()
user = _ui.resolve_user()
#: Every page's URL path; logged out, each one shows the login form.
URL_PATHS = ("live", "approvals", "customers", "analytics", "demo", "privacy", "outbox", "audit", "users")

# The kiosk (a customer joins, or withdraws consent) opens without staff login,
# on a signed link only; it is the one page such a run can reach.
if "kiosk" in st.query_params or "withdraw" in st.query_params:
    kiosk = st.Page("pages/kiosk.py", title="Join", icon=":material/badge:", url_path="kiosk", default=True)
    st.navigation([kiosk], position="hidden").run()
    st.stop()

# An e-mail link (/approvals?token=...) survives the detour through the login page.
if "token" in st.query_params:
    st.session_state[_ui.TOKEN_KEY] = st.query_params["token"]


@st.cache_resource
def _announce_setup_code(data_dir: str) -> None:
    """Print the first-run code once per process on the console running streamlit."""
    code = _ui.authenticator().setup_code()
    if code:
        print(
            f"\nStoreLens: no dashboard users yet. Setup code for the first admin: {code}\n"
            f"(or create one with: storelens users add NAME --role admin)\n",
            file=sys.stderr,
            flush=True,
        )


@st.cache_resource
def _warn_without_app() -> None:
    """Started as ``streamlit run dashboard.py``: the cookie routes are missing; say so once."""
    if _ui.authenticator().kind == "local" and not _ui.cookie_sessions():
        print(
            "\nStoreLens: started without app.py, so a sign-in lasts only for its browser tab."
            "\nStart the dashboard with: streamlit run app.py\n",
            file=sys.stderr,
            flush=True,
        )


_warn_without_app()
if user is None:
    _announce_setup_code(str(settings.data_dir))
    login = st.Page("pages/login.py", title="Log in", icon=":material/login:", default=True)
    # A deep link (a bookmark, the e-mail's /approvals?token=...) opens the login form at its own
    # address, instead of Streamlit's "Page not found", and is where the login leads afterwards.
    asked_for = [st.Page("pages/login.py", title="Log in", url_path=path) for path in URL_PATHS]
    nav = st.navigation([login, *asked_for], position="hidden")
    query = {k: v for k, v in st.query_params.to_dict().items() if k != "signin"}
    st.session_state[_ui.NEXT_KEY] = f"/{nav.url_path}" + (f"?{urlencode(query)}" if query else "")
else:
    live = st.Page("pages/live.py", title="Live", icon=":material/videocam:", default=True)
    waiting = _ui.pending_count()
    pages = [
        live,
        st.Page(
            "pages/approvals.py",
            title=f"Approvals ({waiting})" if waiting else "Approvals",
            icon=":material/how_to_reg:",
            url_path="approvals",
        ),
        st.Page("pages/customers.py", title="Customers", icon=":material/group:", url_path="customers"),
        st.Page("pages/analytics.py", title="Analytics", icon=":material/monitoring:", url_path="analytics"),
        st.Page("pages/demo.py", title="Demo", icon=":material/play_circle:", url_path="demo"),
        st.Page("pages/privacy.py", title="Privacy", icon=":material/shield_person:", url_path="privacy"),
    ]
    if _ui.services().outbox is not None:
        pages.append(st.Page("pages/outbox.py", title="Outbox", icon=":material/mail:", url_path="outbox"))
    if _ui.allowed("manage_users"):
        pages.append(
            st.Page("pages/audit.py", title="Audit log", icon=":material/history:", url_path="audit")
        )
        if _ui.authenticator().kind == "local":  # Cognito users are managed in the user pool
            pages.append(
                st.Page("pages/users.py", title="Users", icon=":material/manage_accounts:", url_path="users")
            )
    nav = st.navigation(pages)
    with st.sidebar:
        st.caption(f"Signed in as **{user.name}** ({user.role}) · users: {_ui.authenticator().kind}")
        if st.button("Log out", key="logout", icon=":material/logout:"):
            _ui.sign_out()
    # Came in through an e-mail link: open the Approvals page with the token.
    if st.session_state.get(_ui.TOKEN_KEY) and not st.session_state.get("link_opened"):
        st.session_state["link_opened"] = True
        if nav.url_path != "approvals":
            st.switch_page(pages[1])

nav.run()
