"""Live: the faces coming in, newest first, refreshing by itself."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import streamlit as st

from core.errors import NotFoundError
from core.models import PendingStatus, SeenEvent
from pages import _ui

_ui.page_guard()

OUTCOME_LABELS = {
    "visit": "recognised",
    "review": "possible returning customer",
    "pending": "new person",
    "suppressed": "not tracked",
}
# What became of a sighting of someone unknown, once a human decided.
DECIDED = {
    PendingStatus.PENDING: "awaiting approval",
    PendingStatus.APPROVED: "approved",
    PendingStatus.MERGED: "identified on review",
    PendingStatus.REJECTED: "rejected",
    PendingStatus.NOT_A_CUSTOMER: "not tracked",
    PendingStatus.EXPIRED: "never decided",
}


def describe(ev: SeenEvent, statuses: dict[str, PendingStatus]) -> tuple[str, str]:
    """Who the card names and what happened, as things stand *now* (not when the face came in)."""
    if ev.outcome == "erased":
        return "Erased customer", "data erased on request"
    if ev.customer_id:
        name = ev.customer_name or "Customer"
        if ev.outcome == "visit":
            return name, "recognised"
        return name, DECIDED.get(statuses.get(ev.pending_id or ""), "identified on review")  # type: ignore[arg-type]
    status = statuses.get(ev.pending_id or "")
    if ev.outcome == "suppressed" or status is PendingStatus.NOT_A_CUSTOMER:
        return "Not tracked", "asked not to be tracked"
    if ev.outcome == "review":
        return "Possible returning customer", DECIDED.get(status, "awaiting review")  # type: ignore[arg-type]
    return "New person", DECIDED.get(status, "awaiting approval")  # type: ignore[arg-type]


def statuses_of(events: list[SeenEvent]) -> dict[str, PendingStatus]:
    out = {}
    for pid in {e.pending_id for e in events if e.pending_id}:
        with contextlib.suppress(NotFoundError):
            out[pid] = services.approvals.get(pid).status
    return out


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
    _ui.fragment_guard()
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    events = services.repos.events.recent(
        limit=int(limit),
        camera_id=None if camera == "All cameras" else camera,
        outcome=None if outcome == "All" else outcome,
        since=since,
    )
    st.caption(f"{len(events)} faces · updated {_ui.local(datetime.now(UTC), '%H:%M:%S')} ({_ui.tz()})")
    if not events:
        st.info("No faces yet. Start the simulator on the Demo page, or point an edge agent here.")
        return
    statuses = statuses_of(events)
    for start in range(0, len(events), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, ev in zip(cols, events[start : start + COLUMNS], strict=False):
            with col.container(border=True):
                _ui.show_crop(ev.crop_key)
                who, what = describe(ev, statuses)
                st.markdown(f"**{who}**")
                sim = f" · similarity {ev.similarity:.2f}" if ev.similarity is not None else ""
                st.caption(
                    f"{what}{sim}  \n{ev.zone} ({ev.camera_id})  \n"
                    + _ui.local(ev.captured_at, "%a %d %b %H:%M:%S")
                )


feed()
