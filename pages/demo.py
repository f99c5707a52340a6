"""Demo: replay a store video through the edge pipeline into this store."""

from __future__ import annotations

import streamlit as st

from pages import _ui

_ui.page_guard()

st.title("Demo")
st.info("The simulator is not installed yet.")
