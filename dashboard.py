"""StoreLens dashboard: ``streamlit run dashboard.py``.

The frame: page config, the login gate, and ``st.navigation`` over the page
scripts in ``pages/``. ``st.navigation`` is called on *every* run: logged out it
lists only the login page, so no page URL can be opened without signing in
(without the call Streamlit would fall back to serving the ``pages/`` folder).
"""

from __future__ import annotations

import sys

import streamlit as st

from pages import _ui

st.set_page_config(page_title="StoreLens", page_icon=":material/storefront:", layout="wide")

settings = _ui.settings()
user = _ui.current_user()

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


if user is None:
    _announce_setup_code(str(settings.data_dir))
    login = st.Page("pages/login.py", title="Log in", icon=":material/login:", default=True)
    nav = st.navigation([login], position="hidden")
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
            for key in list(st.session_state.keys()):
                del st.session_state[key]
            st.rerun()
    # Came in through an e-mail link: open the Approvals page with the token.
    if st.session_state.get(_ui.TOKEN_KEY) and not st.session_state.get("link_opened"):
        st.session_state["link_opened"] = True
        if nav.url_path != "approvals":
            st.switch_page(pages[1])

nav.run()
