"""Approvals: one card per unknown person; a human decides, once, for all their faces."""

from __future__ import annotations

import streamlit as st

from core.errors import NotFoundError, StoreLensError
from core.mail import MAIL_ACTIONS
from core.models import CustomerDetails, Face, PendingIdentity, PendingKind
from core.ports import Decision, DecisionAction
from pages import _ui

_ui.page_guard()

PER_PAGE = 10
MAX_CROPS = 8
LINK_LABELS = {a: label for kind in MAIL_ACTIONS.values() for a, label in kind}
DONE = {
    "approve": "Approved: {name} is now a customer.",
    "reject": "Rejected; the photos were deleted.",
    "not_a_customer": "Marked as not a customer; this person will not be tracked.",
    "confirm": "Confirmed as the suggested customer.",
    "not_this_person": "Moved to the new people queue.",
    "merge": "Added to {name}.",
}

st.title("Approvals")
services = _ui.services()
approvals = services.approvals
can_decide = _ui.allowed("decide")
_ui.show_flash()


def clear_link() -> None:
    st.session_state.pop(_ui.TOKEN_KEY, None)
    st.query_params.clear()


def decide(pending_id: str, decision: Decision, token: str | None = None, *, customer: str = "") -> None:
    """Hand one decision to core; on success flash a message and redraw.

    ``customer`` names the existing customer a merge goes to, for the message.
    """
    try:
        if token:
            approvals.decide_with_token(token, decision)
        else:
            approvals.decide(pending_id, decision)
    except StoreLensError as exc:
        st.error(str(exc))
        return
    if token:
        clear_link()
    name = decision.details.name if decision.details else customer or "the chosen customer"
    _ui.flash(DONE.get(decision.action, "Done.").format(name=name))
    st.rerun()


def approve_form(p: PendingIdentity, token: str | None = None) -> None:
    pid = p.pending_id
    with st.form(f"approve-form-{pid}"):
        st.markdown("**Approve as a new customer**")
        a, b = st.columns(2)
        name = a.text_input("Name *", key=f"name-{pid}")
        email = b.text_input("E-mail", key=f"email-{pid}")
        loyalty = a.text_input("Loyalty id", key=f"loyalty-{pid}")
        notes = b.text_input("Notes", key=f"notes-{pid}")
        consent = st.checkbox(
            "The person agreed to be recognised in this store (consent) *", key=f"consent-{pid}"
        )
        if st.form_submit_button("Approve", key=f"approve-{pid}", type="primary"):
            details = CustomerDetails(
                name=name, email=email or None, loyalty_id=loyalty or None, consent=consent, notes=notes
            )
            decide(pid, Decision(DecisionAction.APPROVE, _ui.actor(), details=details), token)


def merge_picker(p: PendingIdentity, faces: list[Face]) -> None:
    """Add this person's faces to an existing customer: pick, compare the photos, confirm."""
    pid = p.pending_id
    # An expander, not a popover: a popover at the foot of the card cut the two photos off.
    with st.expander("This is an existing customer...", icon=":material/merge:"):
        query = st.text_input("Search customers by name, e-mail or loyalty id", key=f"merge-search-{pid}")
        matches = services.customers.list(query or None, limit=50)
        if not matches:
            st.caption(f"No customer matches {query!r}." if query else "No customers yet.")
            return
        chosen = st.selectbox(
            "Customer",
            matches,
            index=None,
            placeholder="Choose the customer this is",
            key=f"merge-choice-{pid}",
            format_func=lambda c: f"{c.name} ({c.loyalty_id or c.email or 'no loyalty id'})",
        )
        if chosen is None:
            return
        try:
            theirs = services.customers.profile(chosen.customer_id).faces
        except NotFoundError:
            st.warning("That customer no longer exists.")
            return
        a, b = st.columns(2)
        with a:
            st.caption("This person")
            _ui.show_crop(faces[0].crop_key if faces else None)
        with b:
            st.caption(chosen.name)
            _ui.show_crop(max(theirs, key=lambda f: f.captured_at).crop_key if theirs else None)
        sure = st.checkbox(f"Yes, this is {chosen.name}", key=f"merge-sure-{pid}-{chosen.customer_id}")
        if st.button(
            f"Add these photos to {chosen.name}", key=f"merge-{pid}", type="primary", disabled=not sure
        ):
            decide(
                pid,
                Decision(DecisionAction.MERGE, _ui.actor(), customer_id=chosen.customer_id),
                customer=chosen.name,
            )


def suggested(p: PendingIdentity) -> None:
    if not p.suggested_customer_id:
        return
    try:
        profile = services.customers.profile(p.suggested_customer_id)
    except NotFoundError:
        st.warning("The suggested customer no longer exists.")
        return
    a, b = st.columns([1, 5])
    with a:
        _ui.show_crop(profile.faces[0].crop_key if profile.faces else None)
    sim = f"{p.suggested_similarity:.2f}" if p.suggested_similarity is not None else "?"
    seen = [v.last_seen_at for v in profile.visits]
    last = _ui.local(max(seen), "%d %b %Y") if seen else "never"
    b.markdown(f"Possibly **{profile.customer.name}** (similarity {sim}, last seen {last})")


def seen_text(n: int) -> str:
    return "Seen once" if n == 1 else f"Seen {n} times"


def card(
    p: PendingIdentity, token: str | None = None, token_action: str | None = None, expanded: bool = True
) -> None:
    """One pending identity: its faces, where it was seen, and the decisions on offer."""
    pid = p.pending_id
    faces = approvals.faces_of(pid)
    kind = "Possible returning customer" if p.kind is PendingKind.REVIEW else "New person"
    # First and last *sightings* (camera time); created_at is when ingest ran.
    first = min((f.captured_at for f in faces), default=p.created_at)
    where = sorted({f.zone for f in faces})
    summary = (
        f"{seen_text(p.face_count)} · first {_ui.local(first, '%a %d %b %H:%M')} · "
        f"last {_ui.local(p.last_seen_at, '%a %d %b %H:%M')}"
    )
    with st.container(key=f"card-{pid}"), st.expander(f"**{kind}** · {summary}", expanded=expanded):
        st.caption(f"Seen at: {', '.join(where) or 'no photos left'} · times in {_ui.tz()}")
        shown = sorted(faces, key=lambda f: f.captured_at, reverse=True)[:MAX_CROPS]
        if shown:
            for col, face in zip(st.columns(MAX_CROPS), shown, strict=False):
                with col:
                    _ui.show_crop(face.crop_key, caption=_ui.local(face.captured_at, "%d %b %H:%M"))
        if p.kind is PendingKind.REVIEW:
            suggested(p)
        if not can_decide:
            st.caption("Viewers cannot decide; ask an admin.")
            return
        if token_action is not None:
            if token_action == "approve":
                approve_form(p, token)
            elif st.button(
                f"Confirm: {LINK_LABELS.get(token_action, token_action)}",
                key=f"link-{token_action}-{pid}",
                type="primary",
            ):
                decide(pid, Decision(DecisionAction.parse(token_action), _ui.actor()), token)
            return
        if p.kind is PendingKind.REVIEW:
            a, b = st.columns(2)
            if a.button("Yes, it is them", key=f"confirm-{pid}", type="primary", icon=":material/check:"):
                decide(pid, Decision(DecisionAction.CONFIRM, _ui.actor()))
            if b.button("Not this person", key=f"not_this_person-{pid}", icon=":material/person_off:"):
                decide(pid, Decision(DecisionAction.NOT_THIS_PERSON, _ui.actor()))
        else:
            approve_form(p)
        a, b = st.columns(2)
        if a.button("Reject (delete photos)", key=f"reject-{pid}", icon=":material/delete:"):
            decide(pid, Decision(DecisionAction.REJECT, _ui.actor()))
        if b.button("Not a customer (do not track)", key=f"not_a_customer-{pid}", icon=":material/block:"):
            decide(pid, Decision(DecisionAction.NOT_A_CUSTOMER, _ui.actor()))
        merge_picker(p, faces)


# ---------------------------------------------------------------- e-mail link
token = st.session_state.get(_ui.TOKEN_KEY)
linked_id = None
if token:
    with st.container(border=True):
        try:
            claims = approvals.verify_link(token)
            linked = approvals.get(claims.pending_id)
        except StoreLensError as exc:
            st.error(f"This approval link cannot be used: {exc}")
        else:
            st.subheader(f"From your e-mail: {LINK_LABELS.get(claims.action, claims.action)}")
            linked_id = linked.pending_id
            card(linked, token=token, token_action=claims.action)
        if st.button("Close the link", key="link-dismiss"):
            clear_link()
            st.rerun()

# ---------------------------------------------------------------- the queues
# The linked identity is shown above only (widget keys are per identity).
new = [p for p in approvals.list_pending(PendingKind.NEW) if p.pending_id != linked_id]
review = [p for p in approvals.list_pending(PendingKind.REVIEW) if p.pending_id != linked_id]
tab_new, tab_review = st.tabs([f"New people ({len(new)})", f"Possible returning customers ({len(review)})"])


def queue(items: list[PendingIdentity], key: str) -> None:
    if not items:
        st.info("Nothing waiting.")
        return
    pages = (len(items) + PER_PAGE - 1) // PER_PAGE
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"page-{key}"))
    # Only the first card opens by itself: a page of open forms is thousands of pixels long.
    for i, p in enumerate(items[(page - 1) * PER_PAGE : page * PER_PAGE]):
        card(p, expanded=i == 0)


with tab_new:
    queue(new, "new")
with tab_review:
    queue(review, "review")
