"""Streamlit page scripts of the StoreLens dashboard (run through ``st.navigation``)."""
