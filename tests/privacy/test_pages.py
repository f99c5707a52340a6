"""The kiosk and Privacy pages under AppTest, on a real local store in a tmp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.bootstrap import Services, build_services
from core.enrolment import consent_service
from core.settings import TOOL_VARIABLES
from core.users import User
from tests.conftest import TEST_SECRET, make_settings
from tests.privacy.conftest import enrol
from tests.support.photos import photo_bytes

ROOT = Path(__file__).resolve().parents[2]
ADMIN = User("ann", "admin")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """Services on the same tmp data dir the app reads from the environment (consent-first)."""
    for key in [k for k in os.environ if k.startswith("STORELENS_") and k not in TOOL_VARIABLES]:
        monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("STORELENS_DATA_DIR", str(data))
    monkeypatch.setenv("STORELENS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("STORELENS_PRIVACY_MODE", "consent-first")
    st.cache_data.clear()
    st.cache_resource.clear()
    svc = build_services(make_settings(data, privacy_mode="consent-first"))
    yield svc
    svc.close()
    st.cache_data.clear()
    st.cache_resource.clear()


def app(user: User | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    if user is not None:
        at.session_state["user"] = user
    for key, value in query.items():
        at.query_params[key] = value
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_kiosk_enrols_a_customer_without_staff_login(store: Services) -> None:
    token = consent_service(store).kiosk_link("store-1").split("kiosk=", 1)[1]
    at = app(kiosk=token).run()
    no_exception(at)
    assert at.title[0].value == "Join: be recognised in this store"
    assert any("face template" in m.value for m in at.markdown)
    assert at.button(key="enrol_submit_0").disabled  # no consent ticked yet

    at.text_input(key="enrol_name_0").input("Grace Hopper")
    at.checkbox(key="enrol_consent_0").check().run()
    at.camera_input(key="enrol_camera_0").set_value(("selfie.jpg", photo_bytes("grace_hopper"), "image/jpeg"))
    at.run()
    at.button(key="enrol_submit_0").click().run()
    no_exception(at)
    assert [s.value for s in at.success] == [
        "Welcome, Grace Hopper! You can withdraw your consent at any time."
    ]
    (customer,) = store.repos.customers.list()
    (record,) = consent_service(store).consent_records(customer.customer_id)
    assert (record.channel, record.assisted_by, record.store_id) == ("kiosk", None, "store-1")
    assert store.repos.faces.count_templates(customer.customer_id) == 1
    # The next person starts with an empty form.
    assert at.text_input(key="enrol_name_1").value == ""


def test_kiosk_photo_gate_message(store: Services) -> None:
    token = consent_service(store).kiosk_link().split("kiosk=", 1)[1]
    at = app(kiosk=token).run()
    at.text_input(key="enrol_name_0").input("Crowd")
    at.checkbox(key="enrol_consent_0").check().run()
    at.camera_input(key="enrol_camera_0").set_value(("group.jpg", photo_bytes("t1"), "image/jpeg"))
    at.run()
    at.button(key="enrol_submit_0").click().run()
    no_exception(at)
    assert any("only the person enrolling may be in the photo" in e.value for e in at.error)
    assert store.repos.customers.count() == 0 and store.repos.audit.list() == []


def test_a_forged_kiosk_link_shows_nothing_and_reaches_no_other_page(store: Services) -> None:
    enrol(store, "Barack Obama", "obama")
    at = app(kiosk="forged.token").run()
    no_exception(at)
    assert at.error and "cannot be used" in at.error[0].value
    assert not at.text_input and not at.camera_input
    # The kiosk run registers no other page, so none can be opened from it.
    with pytest.raises(ValueError, match=r"Known pages: \['[^,]*pages/kiosk\.py'\]"):
        at.switch_page("pages/customers.py")
    assert "Barack" not in str([m.value for m in at.markdown] + [t.value for t in at.text])


def test_withdrawal_link_erases_the_customer(store: Services) -> None:
    barack = enrol(store, "Barack Obama", "obama", email="barack@example.com")
    token = consent_service(store).withdrawal_link(barack.customer_id).split("withdraw=", 1)[1]
    at = app(withdraw=token).run()
    no_exception(at)
    assert at.title[0].value == "Withdraw your consent"
    at.button(key="withdraw_confirm").click().run()
    no_exception(at)
    assert at.success and "erased" in at.success[0].value
    assert store.repos.customers.count() == 0
    # A fresh index on the data dir (the app's process-wide one did the deleting).
    from core.local.faces import LocalFaceIndex

    fresh = LocalFaceIndex(store.settings.data_dir, engine=store.faces.engine)  # type: ignore[attr-defined]
    assert fresh.list_faces(store.settings.collection_id) == []
    assert store.notifier.messages() == []  # type: ignore[attr-defined]
    # A used link cannot be used again.
    again = app(withdraw=token).run()
    assert again.error


def test_privacy_page_for_admins(store: Services) -> None:
    barack = enrol(store, "Barack Obama", "obama")
    at = app(ADMIN).run()
    no_exception(at)
    at.switch_page("pages/privacy.py").run()
    no_exception(at)
    assert at.title[0].value == "Privacy"
    assert any("Today: 0 people counted" in c.value for c in at.caption)
    assert any("/?kiosk=" in c.value for c in at.code)
    names = {b.label for b in at.download_button}
    assert {"Download Signage notice (first layer)", "Download DPIA inputs", "Download QR code"} <= names
    # Staff-assisted enrolment names the staff member in the consent record.
    at.text_input(key="enrol_name_0").input("Grace Hopper")
    at.checkbox(key="enrol_consent_0").check().run()
    at.camera_input(key="enrol_camera_0").set_value(("g.jpg", photo_bytes("grace_hopper"), "image/jpeg"))
    at.run()
    at.button(key="enrol_submit_0").click().run()
    no_exception(at)
    grace = next(c for c in store.repos.customers.list() if c.name == "Grace Hopper")
    (record,) = consent_service(store).consent_records(grace.customer_id)
    assert (record.channel, record.assisted_by) == ("staff", "ann")
    # The retention sweep runs from the page.
    at.button(key="run_purge").click().run()
    no_exception(at)
    assert any("no longer recognisable" in s.value for s in at.success)
    assert store.repos.faces.count_templates(barack.customer_id) == 1  # recent: kept


def test_privacy_page_needs_login(store: Services) -> None:
    at = app(ADMIN).run()
    at.switch_page("pages/privacy.py").run()
    assert at.title[0].value == "Privacy"
    del at.session_state["user"]
    at.run()
    no_exception(at)
    assert all(t.value != "Privacy" for t in at.title) and not at.code


def test_customers_page_in_consent_first_mode_enrols_with_notice_and_consent(store: Services) -> None:
    at = app(ADMIN).run()
    at.switch_page("pages/customers.py").run()
    no_exception(at)
    # No plain form (it would write a template without a consent record first) ...
    assert not [w for w in at.text_input if str(w.key).startswith("enrol_plain")]
    assert any("No customers yet: enrol someone above." in i.value for i in at.info)
    # ... but the notice and the person's own consent box, as on the Privacy page.
    assert any("face template" in m.value for m in at.markdown)
    assert at.button(key="enrol_submit_0").disabled
    at.text_input(key="enrol_name_0").input("Grace Hopper")
    at.checkbox(key="enrol_consent_0").check().run()
    at.camera_input(key="enrol_camera_0").set_value(("g.jpg", photo_bytes("grace_hopper"), "image/jpeg"))
    at.run()
    at.button(key="enrol_submit_0").click().run()
    no_exception(at)
    (grace,) = store.repos.customers.list()
    (record,) = consent_service(store).consent_records(grace.customer_id)
    assert (record.channel, record.assisted_by) == ("staff", "ann")
    assert store.repos.faces.count_templates(grace.customer_id) == 1
    assert any("enrolled (consent recorded first)" in s.value for s in at.success)


def test_customers_page_in_review_mode_keeps_the_plain_enrol_form(
    store: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORELENS_PRIVACY_MODE", "review")
    at = app(ADMIN).run()
    at.switch_page("pages/customers.py").run()
    no_exception(at)
    assert at.text_input(key="enrol_plain_name") is not None
    assert not [b for b in at.button if str(b.key).startswith("enrol_submit")]
