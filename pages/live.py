"""Live: the faces coming in, newest first, refreshing by itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from pages import _ui

_ui.page_guard()

OUTCOME_LABELS = {
    "visit": "known customer",
    "review": "possible returning customer",
    "pending": "new person (awaiting approval)",
    "suppressed": "not tracked",
}
COLUMNS = 6

st.title("Live")
services = _ui.services()

left, mid, right, far = st.columns([2, 2, 1, 1])
cameras = ["All cameras", *_ui.cameras()]
camera = left.selectbox("Camera", cameras, key="live_camera")
outcome = mid.selectbox(
    "Band", ["All", *OUTCOME_LABELS], key="live_outcome", format_func=lambda o: OUTCOME_LABELS.get(o, o)
)
limit = right.number_input("Show", min_value=6, max_value=120, value=24, step=6, key="live_limit")
hours = far.number_input(
    "Last hours", min_value=0, max_value=24 * 30, value=0, key="live_hours", help="0 shows everything"
)
auto = st.toggle("Refresh every 3 s", value=True, key="live_auto")


@st.fragment(run_every=3 if auto else None)
def feed() -> None:
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    events = services.repos.events.recent(
        limit=int(limit),
        camera_id=None if camera == "All cameras" else camera,
        outcome=None if outcome == "All" else outcome,
        since=since,
    )
    st.caption(f"{len(events)} faces · updated {datetime.now(UTC):%H:%M:%S} UTC")
    if not events:
        st.info("No faces yet. Start the simulator on the Demo page, or point an edge agent here.")
        return
    for start in range(0, len(events), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, ev in zip(cols, events[start : start + COLUMNS], strict=False):
            with col.container(border=True):
                _ui.show_crop(ev.crop_key)
                who = (
                    ev.customer_name
                    or (ev.customer_id and "customer")
                    or ("pending approval" if ev.pending_id else "unknown")
                )
                st.markdown(f"**{who}**")
                sim = f" · {ev.similarity:.2f}" if ev.similarity is not None else ""
                st.caption(
                    f"{OUTCOME_LABELS.get(ev.outcome, ev.outcome)}{sim}  \n"
                    f"{ev.camera_id} / {ev.zone}  \n{ev.captured_at:%Y-%m-%d %H:%M:%S} UTC"
                )


feed()
