"""StoreLens dashboard entry point: ``streamlit run app.py``.

``st.App`` serves ``dashboard.py`` (the page frame) and, beside it, the
``/session/*`` routes of :mod:`core.web` that set and clear the HttpOnly
sign-in cookie, so a sign-in lasts across refreshes and new tabs.
``streamlit run`` finds the module-level ``app`` and runs it with uvicorn.
"""

import streamlit as st

from core.web import dashboard_routes

app = st.App("dashboard.py", routes=dashboard_routes())
