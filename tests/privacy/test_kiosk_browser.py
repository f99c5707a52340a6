"""The kiosk in Debian's Chromium: a customer joins from a QR link without staff login.

Starts ``streamlit run app.py`` in consent-first mode over a tmp store, opens
the signed kiosk link, reads the notice, ticks consent, uploads a selfie, joins;
a forged link shows an error and no form, and the kiosk run reaches no other page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import build_services
from core.enrolment import consent_service
from tests.browser.test_dashboard_browser import CHROMIUM, browser  # noqa: F401 (fixture)
from tests.conftest import make_settings
from tests.support.dashboard_server import dashboard_server
from tests.support.photos import photo

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def kiosk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    data = tmp_path_factory.mktemp("kiosk") / "data"
    with dashboard_server(data, STORELENS_PRIVACY_MODE="consent-first") as base:
        yield base, data


def test_customer_joins_at_the_kiosk(kiosk_server: tuple[str, Path], browser) -> None:  # noqa: F811
    from playwright.sync_api import expect

    base, data = kiosk_server
    settings = make_settings(data, privacy_mode="consent-first", public_url=base)
    services = build_services(settings)
    try:
        link = consent_service(services).kiosk_link("store-1")
    finally:
        services.close()

    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    page = context.new_page()
    # A forged link: an error, no form.
    page.goto(f"{base}/?kiosk=forged.token")
    expect(page.get_by_text("This kiosk link cannot be used")).to_be_visible(timeout=60_000)
    assert page.get_by_role("button", name="Join").count() == 0

    page.goto(link)
    expect(page.locator("h1", has_text="Join: be recognised in this store")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("face template").first).to_be_visible()
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_text("I have read the notice and I explicitly consent").click()
    page.get_by_text("Upload a photo").click()
    page.locator("input[type='file']").set_input_files(str(photo("grace_hopper")))
    expect(page.get_by_text("grace_hopper").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_text("Welcome, Grace Hopper!")).to_be_visible(timeout=90_000)
    body = page.locator("body").inner_text()
    for leak in ("Live", "Approvals", "Customers", "Log out"):
        assert leak not in body, leak
    context.close()

    services = build_services(settings)
    try:
        (customer,) = services.repos.customers.list()
        (record,) = consent_service(services).consent_records(customer.customer_id)
        assert (customer.name, record.channel) == ("Grace Hopper", "kiosk")
    finally:
        services.close()
