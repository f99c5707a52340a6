"""Every dashboard page under Streamlit's AppTest, on a real local store in a tmp dir.

The store is seeded through the real services (real photos, dlib engine): one
enrolled customer with a visit and a sale, and one unknown person awaiting
approval. Assertions are on what the page shows and on the store's state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.bootstrap import Services, build_services
from core.models import PendingStatus, Transaction, new_id
from core.users import User, UserStore
from tests.conftest import TEST_SECRET, make_settings
from tests.support.events import make_event
from tests.support.photos import photo_bytes

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["live", "approvals", "customers", "analytics", "demo", "outbox", "audit", "users"]
ADMIN = User("ann", "admin")
VIEWER = User("vic", "viewer")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app reads its settings from the environment: point them at a tmp store."""
    import os

    from core.settings import TOOL_VARIABLES

    # Product settings from the developer's shell must not leak in; tool
    # variables (the test-photo cache) must stay.
    for key in [k for k in os.environ if k.startswith("STORELENS_") and k not in TOOL_VARIABLES]:
        monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("STORELENS_DATA_DIR", str(data))
    monkeypatch.setenv("STORELENS_SECRET_KEY", TEST_SECRET)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield data
    st.cache_data.clear()
    st.cache_resource.clear()


@dataclass
class Seeded:
    """The seeded services and the ids the tests act on."""

    services: Services
    biden: str  # Biden's pending identity
    obama: str  # Obama's customer id


@pytest.fixture
def seeded(data_dir: Path) -> Iterator[Seeded]:
    """Obama enrolled (one visit, one sale); Biden seen once and awaiting approval."""
    services = build_services(make_settings(data_dir))
    obama = services.customers.enroll(
        "Barack Obama", [photo_bytes("obama2")], loyalty_id="L-1001", email="barack@example.com"
    )
    seen = services.ingest.ingest(make_event(photo_bytes("obama"), camera_id="cam-entrance"))
    assert seen.customer_id == obama.customer_id
    services.repos.transactions.add(
        Transaction(
            new_id("txn"),
            "store-1",
            datetime.now(UTC),
            4250,
            loyalty_id="L-1001",
            customer_id=obama.customer_id,
        )
    )
    pending = services.ingest.ingest(make_event(photo_bytes("biden"), camera_id="cam-entrance"))
    assert pending.pending_id
    yield Seeded(services, biden=pending.pending_id, obama=obama.customer_id)
    services.close()


def app(user: User | None = ADMIN, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    if user is not None:
        at.session_state["user"] = user
    for key, value in query.items():
        at.query_params[key] = value
    return at


def open_page(page: str, user: User | None = ADMIN) -> AppTest:
    at = app(user).run()
    assert not at.exception, at.exception
    return at.switch_page(f"pages/{page}.py").run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


# ------------------------------------------------------------------ login gate


def test_logged_out_shows_only_login(data_dir: Path) -> None:
    UserStore.for_data_dir(data_dir).add("ann", "ann-password", "admin")
    at = app(user=None).run()
    no_exception(at)
    assert titles(at) == ["StoreLens"]
    assert at.text_input(key="login_user") and at.text_input(key="login_password")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_refuses_after_logout(seeded: Seeded, page: str) -> None:
    at = open_page(page)
    no_exception(at)
    assert titles(at)[0] != "StoreLens"
    del at.session_state["user"]
    at.run()
    no_exception(at)
    assert titles(at) == ["StoreLens"], f"{page} still served without login"


def test_login_wrong_then_right_password(data_dir: Path) -> None:
    UserStore.for_data_dir(data_dir).add("ann", "ann-password", "admin")
    at = app(user=None).run()
    at.text_input(key="login_user").input("ann")
    at.text_input(key="login_password").input("wrong-password")
    at.button(key="login_submit").click().run()
    assert any("wrong user name or password" in e.value for e in at.error)
    at.text_input(key="login_password").input("ann-password")
    at.button(key="login_submit").click().run()
    no_exception(at)
    assert at.session_state["user"] == User("ann", "admin")


def test_login_is_rate_limited(data_dir: Path) -> None:
    UserStore.for_data_dir(data_dir).add("ann", "ann-password", "admin")
    at = app(user=None).run()
    at.text_input(key="login_user").input("ann")
    for _ in range(5):
        at.text_input(key="login_password").input("wrong-password")
        at.button(key="login_submit").click().run()
    at.text_input(key="login_password").input("ann-password")
    at.button(key="login_submit").click().run()
    assert any("too many failed" in e.value for e in at.error)
    assert "user" not in at.session_state


def test_first_admin_with_setup_code(data_dir: Path) -> None:
    at = app(user=None).run()
    no_exception(at)
    code = (data_dir / "setup-code").read_text().strip()
    at.text_input(key="setup_code").input(code)
    at.text_input(key="setup_name").input("root")
    at.text_input(key="setup_password").input("root-password")
    at.text_input(key="setup_repeat").input("root-password")
    at.button(key="setup_submit").click().run()
    no_exception(at)
    assert at.session_state["user"] == User("root", "admin")
    assert UserStore.for_data_dir(data_dir).get("root").role == "admin"


# ------------------------------------------------------------------ pages


def test_live_shows_faces(seeded: Seeded) -> None:
    at = open_page("live")
    no_exception(at)
    assert titles(at) == ["Live"]
    assert at.selectbox(key="live_camera") and at.toggle(key="live_auto")
    text = " ".join(m.value for m in at.markdown)
    assert "Barack Obama" in text and "New person" in text
    assert len(at.image) >= 2, "no face crops shown"


def test_approve_with_details_creates_customer(seeded: Seeded) -> None:
    pid = seeded.biden
    at = open_page("approvals")
    no_exception(at)
    assert at.button(key=f"reject-{pid}") and at.button(key=f"not_a_customer-{pid}")
    at.text_input(key=f"name-{pid}").input("Joe Biden")
    at.text_input(key=f"email-{pid}").input("joe@example.com")
    at.text_input(key=f"loyalty-{pid}").input("L-1003")
    at.checkbox(key=f"consent-{pid}").check()
    at.button(key=f"approve-{pid}").click().run()
    no_exception(at)
    assert any("Joe Biden is now a customer" in s.value for s in at.success)
    pending = seeded.services.approvals.get(pid)
    assert pending.status is PendingStatus.APPROVED
    customer = seeded.services.customers.get(pending.customer_id)
    assert (customer.name, customer.loyalty_id, customer.consent) == ("Joe Biden", "L-1003", True)
    assert f"name-{pid}" not in [t.key for t in at.text_input]


@pytest.mark.parametrize(
    ("fill", "message"),
    [
        ({"name": "Joe", "consent": False}, "consent is required"),
        ({"name": "", "consent": True}, "name is required"),
        ({"name": "Joe", "email": "not-an-email", "consent": True}, "is not an e-mail address"),
    ],
)
def test_approve_validation_errors(seeded: Seeded, fill: dict, message: str) -> None:
    pid = seeded.biden
    at = open_page("approvals")
    at.text_input(key=f"name-{pid}").input(fill["name"])
    if "email" in fill:
        at.text_input(key=f"email-{pid}").input(fill["email"])
    if fill["consent"]:
        at.checkbox(key=f"consent-{pid}").check()
    at.button(key=f"approve-{pid}").click().run()
    no_exception(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert seeded.services.approvals.get(pid).status is PendingStatus.PENDING


def test_merge_into_an_existing_customer_asks_first(seeded: Seeded) -> None:
    pid = seeded.biden
    at = open_page("approvals")
    at.text_input(key=f"merge-search-{pid}").input("Obama").run()
    assert at.selectbox(key=f"merge-choice-{pid}").value is None, "no customer is preselected"
    at.selectbox(key=f"merge-choice-{pid}").select_index(0).run()
    no_exception(at)
    assert at.button(key=f"merge-{pid}").disabled
    at.checkbox(key=f"merge-sure-{pid}-{seeded.obama}").check().run()
    at.button(key=f"merge-{pid}").click().run()
    no_exception(at)
    pending = seeded.services.approvals.get(pid)
    assert pending.status is PendingStatus.MERGED and pending.customer_id == seeded.obama


def test_live_names_a_sighting_after_approval(seeded: Seeded) -> None:
    from core.models import CustomerDetails
    from core.ports import Decision

    pid = seeded.biden
    seeded.services.approvals.decide(
        pid, Decision("approve", "test", details=CustomerDetails(name="Joe Biden", consent=True))
    )
    at = open_page("live")
    no_exception(at)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Joe Biden" in text and "approved" in text
    assert "awaiting approval" not in text and "pid_" not in text


def test_reject_removes_the_card(seeded: Seeded) -> None:
    pid = seeded.biden
    at = open_page("approvals")
    at.button(key=f"not_a_customer-{pid}").click().run()
    no_exception(at)
    assert seeded.services.approvals.get(pid).status is PendingStatus.NOT_A_CUSTOMER
    assert f"reject-{pid}" not in [b.key for b in at.button]


def test_viewer_cannot_decide(seeded: Seeded) -> None:
    pid = seeded.biden
    at = open_page("approvals", user=VIEWER)
    no_exception(at)
    keys = [b.key for b in at.button]
    assert f"reject-{pid}" not in keys and f"approve-{pid}" not in keys
    assert any("Viewers cannot decide" in c.value for c in at.caption)


def _mail_token(services: Services, action: str) -> str:
    (_path, msg), *_ = services.notifier.messages()
    html = msg.get_body(preferencelist=("html",)).get_content()
    for url in re.findall(r'href="([^"]+)"', html):
        token = parse_qs(urlparse(url.replace("&amp;", "&")).query)["token"][0]
        if services.approvals.signer.verify(token).action == action:
            return token
    raise AssertionError(f"no {action} link")


def test_email_link_opens_the_decision(seeded: Seeded) -> None:
    pid = seeded.biden
    token = _mail_token(seeded.services, "reject")
    at = app(ADMIN, token=token).run()
    no_exception(at)
    assert titles(at) == ["Approvals"]
    assert any("From your e-mail" in s.value for s in at.subheader)
    at.button(key=f"link-reject-{pid}").click().run()
    no_exception(at)
    assert seeded.services.approvals.get(pid).status is PendingStatus.REJECTED


def test_email_link_survives_login(seeded: Seeded) -> None:
    UserStore.for_data_dir(seeded.services.settings.data_dir).add("ann", "ann-password", "admin")
    pid = seeded.biden
    token = _mail_token(seeded.services, "approve")
    at = app(None, token=token).run()
    assert any("approval link" in i.value for i in at.info)
    at.text_input(key="login_user").input("ann")
    at.text_input(key="login_password").input("ann-password")
    at.button(key="login_submit").click().run()
    no_exception(at)
    assert titles(at) == ["Approvals"]
    at.text_input(key=f"name-{pid}").input("Joe Biden")
    at.checkbox(key=f"consent-{pid}").check()
    at.button(key=f"approve-{pid}").click().run()
    no_exception(at)
    assert seeded.services.approvals.get(pid).status is PendingStatus.APPROVED


def test_customers_profile_and_edit_validation(seeded: Seeded) -> None:
    cid = seeded.obama
    at = open_page("customers")
    no_exception(at)
    assert any(h.value == "Barack Obama" for h in at.header)
    assert at.text_input(key="cust_search") and at.button(key=f"erase_go_{cid}")
    at.text_input(key=f"edit_name_{cid}").input("")
    at.button(key=f"edit_save_{cid}").click().run()
    assert any("name is required" in e.value for e in at.error)
    at.text_input(key=f"edit_name_{cid}").input("Barack H. Obama")
    at.button(key=f"edit_save_{cid}").click().run()
    no_exception(at)
    assert seeded.services.customers.get(cid).name == "Barack H. Obama"


def _second_customer(services: Services) -> str:
    joe = services.customers.enroll(
        "Joe Biden",
        [photo_bytes("biden")],
        loyalty_id="L-2002",
        email="joe@example.com",
        notes="likes ice cream",
    )
    return joe.customer_id


def test_edit_two_customers_in_a_row_keeps_each_ones_values(seeded: Seeded) -> None:
    """Regression: the edit form used fixed keys and saved customer A's values over B."""
    obama, joe = seeded.obama, _second_customer(seeded.services)
    at = open_page("customers")
    at.selectbox(key="cust_pick").set_value(obama).run()
    at.text_input(key=f"edit_name_{obama}").input("Barack H. Obama")
    at.text_input(key=f"edit_notes_{obama}").input("prefers e-mail")
    at.button(key=f"edit_save_{obama}").click().run()
    no_exception(at)
    # Switch to the other customer: the form shows *their* stored values...
    at.selectbox(key="cust_pick").set_value(joe).run()
    no_exception(at)
    assert at.text_input(key=f"edit_name_{joe}").value == "Joe Biden"
    assert at.text_input(key=f"edit_email_{joe}").value == "joe@example.com"
    assert at.text_input(key=f"edit_loyalty_{joe}").value == "L-2002"
    assert at.text_input(key=f"edit_notes_{joe}").value == "likes ice cream"
    # ... and saving them changes only what was typed, on the right record.
    at.text_input(key=f"edit_email_{joe}").input("joseph@example.com")
    at.button(key=f"edit_save_{joe}").click().run()
    no_exception(at)
    a, b = seeded.services.customers.get(obama), seeded.services.customers.get(joe)
    assert (a.name, a.email, a.loyalty_id, a.notes) == (
        "Barack H. Obama",
        "barack@example.com",
        "L-1001",
        "prefers e-mail",
    )
    assert (b.name, b.email, b.loyalty_id, b.notes) == (
        "Joe Biden",
        "joseph@example.com",
        "L-2002",
        "likes ice cream",
    )
    # Back to the first one: still their values, not the second's.
    at.selectbox(key="cust_pick").set_value(obama).run()
    assert at.text_input(key=f"edit_name_{obama}").value == "Barack H. Obama"


def test_merge_tick_and_erase_confirmation_do_not_carry_over(seeded: Seeded) -> None:
    obama, joe = seeded.obama, _second_customer(seeded.services)
    at = open_page("customers")
    at.selectbox(key="cust_pick").set_value(obama).run()
    assert at.button(key=f"merge_go_{obama}").disabled  # nothing chosen yet
    at.selectbox(key=f"merge_other_{obama}").select_index(0).run()
    at.checkbox(key=f"merge_sure_{obama}_{joe}").check().run()
    at.text_input(key=f"erase_confirm_{obama}").input("Barack Obama").run()
    assert not at.button(key=f"merge_go_{obama}").disabled
    at.selectbox(key="cust_pick").set_value(joe).run()
    no_exception(at)
    assert at.selectbox(key=f"merge_other_{joe}").value is None
    assert at.button(key=f"merge_go_{joe}").disabled
    assert at.text_input(key=f"erase_confirm_{joe}").value == ""
    assert at.button(key=f"erase_go_{joe}").disabled
    assert {c.customer_id for c in seeded.services.customers.list()} == {obama, joe}


def test_merge_shows_both_photos_and_needs_confirmation(seeded: Seeded) -> None:
    obama, joe = seeded.obama, _second_customer(seeded.services)
    at = open_page("customers")
    at.selectbox(key="cust_pick").set_value(obama).run()
    images = len(at.image)
    at.selectbox(key=f"merge_other_{obama}").select_index(0).run()
    assert len(at.image) == images + 2, "both people's photos are shown"
    assert at.button(key=f"merge_go_{obama}").disabled, "it cannot merge without confirmation"
    at.checkbox(key=f"merge_sure_{obama}_{joe}").check().run()
    at.button(key=f"merge_go_{obama}").click().run()
    no_exception(at)
    assert [c.customer_id for c in seeded.services.customers.list()] == [obama]


def test_customer_table_has_visits_last_seen_and_spend(seeded: Seeded) -> None:
    _second_customer(seeded.services)
    at = open_page("customers")
    table = at.dataframe(key="cust_table").value
    obama_row = table[table["Name"] == "Barack Obama"].iloc[0]
    assert (obama_row["Store visits"], obama_row["Spend"]) == (1, 42.5)
    assert obama_row["Last seen"]
    assert "customer_id" not in table.columns and "id" not in table.columns


def test_search_without_match_says_so(seeded: Seeded) -> None:
    at = open_page("customers")
    at.text_input(key="cust_search").input("Nobody Here").run()
    no_exception(at)
    assert any("No customer matches 'Nobody Here'" in i.value for i in at.info)


def test_customers_erase_needs_the_name(seeded: Seeded) -> None:
    cid = seeded.obama
    at = open_page("customers")
    assert at.button(key=f"erase_go_{cid}").disabled
    at.text_input(key=f"erase_confirm_{cid}").input("Barack Obama").run()
    at.button(key=f"erase_go_{cid}").click().run()
    no_exception(at)
    assert [c.customer_id for c in seeded.services.customers.list()] == []


def test_analytics_page(seeded: Seeded) -> None:
    at = open_page("analytics")
    no_exception(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Visitors"] == "1" and labels["Store visits"] == "1"
    assert labels["New customers"] == "1" and labels["Conversion"] == "100%"
    assert labels["Spend, linked (EUR)"] == "42"
    assert at.date_input(key="an_dates") and at.multiselect(key="an_cameras")
    assert all(m.help for m in at.metric), "every KPI explains itself"
    at.radio(key="an_period").set_value("week").run()
    no_exception(at)
    assert at.get("download_button"), "tables can be exported"


def test_analytics_empty_range_says_so(seeded: Seeded) -> None:
    from datetime import date

    at = open_page("analytics")
    at.date_input(key="an_dates").set_value((date(2020, 1, 1), date(2020, 1, 7))).run()
    no_exception(at)
    assert any("No store visits in this range" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Returning rate"] == "-"


def test_analytics_days_follow_the_store_time_zone(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORELENS_TIMEZONE", "Pacific/Kiritimati")  # UTC+14
    at = open_page("analytics")
    no_exception(at)
    assert at.date_input(key="an_dates").label == "Dates (Pacific/Kiritimati)"


def test_navigation_counts_pending_approvals(seeded: Seeded) -> None:
    at = open_page("live")
    no_exception(at)
    titles_ = [p["page_name"] for p in at._registered_pages.values()]
    assert "Approvals (1)" in titles_ and "Users" in titles_ and "Audit log" in titles_
    viewer = open_page("live", user=VIEWER)
    titles_ = [p["page_name"] for p in viewer._registered_pages.values()]
    assert "Users" not in titles_ and "Audit log" not in titles_


def test_users_page_add_role_password_remove(seeded: Seeded) -> None:
    store = UserStore.for_data_dir(seeded.services.settings.data_dir)
    store.add("ann", "ann-password", "admin")
    at = open_page("users")
    no_exception(at)
    at.text_input(key="user_add_name").input("bob")
    at.text_input(key="user_add_password").input("bob-password")
    at.text_input(key="user_add_repeat").input("bob-password")
    at.button(key="user_add_go").click().run()
    no_exception(at)
    assert store.get("bob").role == "viewer"
    at.selectbox(key="user_pick").set_value("bob").run()
    at.selectbox(key="user_role_bob").set_value("admin")
    at.button(key="user_role_go_bob").click().run()
    assert store.get("bob").role == "admin"
    # A password reset signs bob out of every browser (his session records are revoked).
    from core.local.sessions import local_session_manager

    sessions = local_session_manager(seeded.services.settings.data_dir)
    bobs = sessions.start(sessions.issue_ticket(User("bob", "admin"), "/"))
    assert bobs is not None and sessions.user_for(bobs.cookie) == User("bob", "admin")
    at.selectbox(key="user_pick").set_value("bob").run()
    at.text_input(key="user_pw_bob").input("new-bob-password")
    at.text_input(key="user_pw2_bob").input("new-bob-password")
    at.button(key="user_pw_go_bob").click().run()
    assert store.verify("bob", "new-bob-password") == User("bob", "admin")
    assert sessions.user_for(bobs.cookie) is None
    at.selectbox(key="user_pick").set_value("bob").run()
    assert at.button(key="user_rm_go_bob").disabled
    at.checkbox(key="user_rm_sure_bob").check().run()
    at.button(key="user_rm_go_bob").click().run()
    no_exception(at)
    assert [u.name for u in store.list()] == ["ann"]
    at.selectbox(key="user_pick").set_value("ann").run()
    assert "user_rm_go_ann" not in [b.key for b in at.button], "you cannot remove yourself"
    audit = open_page("audit")
    no_exception(audit)
    log = audit.dataframe[0].value
    assert {"added a user", "changed a role", "reset a password", "removed a user"} <= set(log["What"])
    assert "bob" in set(log["Whom"]) and "ann" in set(log["Who"])


def test_demo_page_controls(seeded: Seeded) -> None:
    at = open_page("demo")
    no_exception(at)
    assert at.button(key="demo_build") and at.button(key="demo_replay")
    viewer = open_page("demo", user=VIEWER)
    assert viewer.button(key="demo_build").disabled


def test_outbox_renders_the_mail(seeded: Seeded) -> None:
    at = open_page("outbox")
    no_exception(at)
    assert any("new person to review" in m.value for m in at.markdown)
    assert at.selectbox(key="outbox_pick")


def test_demo_replay_runs_in_the_background(data_dir: Path) -> None:
    """Start a synthetic replay from the page; it ends with its summary and new pending people."""
    import time

    at = open_page("demo")
    at.button(key="demo_replay").click().run()
    no_exception(at)
    deadline = time.monotonic() + 240
    while not at.code and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
    summary = at.code[0].value
    assert "events" in summary and "pending ids" in summary
    services = build_services(make_settings(data_dir))
    try:
        assert len(services.approvals.list_pending()) >= 3  # the walkers are strangers to the store
    finally:
        services.close()
