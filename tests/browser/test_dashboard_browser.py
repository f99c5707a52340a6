"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Starts ``streamlit run app.py`` on a free port over a tmp store seeded
through the real services, then: every page URL is refused while logged out
(the very first request of the server process included); log in; live faces
show; approve a pending identity with details; the customer appears; analytics
opens. Needs ``/usr/bin/chromium`` (``apt-get install chromium``); never runs
``playwright install``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import build_services
from core.users import UserStore
from tests.conftest import make_settings
from tests.support.dashboard_server import dashboard_server
from tests.support.events import make_event
from tests.support.photos import photo_bytes

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
URL_PATHS = ["live", "approvals", "customers", "analytics", "demo", "outbox", "audit", "users", ""]
PASSWORD = "ann-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    data = tmp_path_factory.mktemp("browser") / "data"
    services = build_services(make_settings(data))
    services.customers.enroll("Barack Obama", [photo_bytes("obama2")], loyalty_id="L-1001")
    assert services.ingest.ingest(make_event(photo_bytes("obama"))).customer_id
    assert services.ingest.ingest(make_event(photo_bytes("biden"))).pending_id
    services.close()
    UserStore.for_data_dir(data).add("ann", PASSWORD, "admin")

    with dashboard_server(data) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def _login_form_only(page, base: str, path: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/{path}")
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)  # let any page script that slipped through render
    body = page.locator("body").inner_text()
    for leak in ("Barack Obama", "New person", "Store visits", "Demo store data", "Outbox", "Audit log"):
        assert leak not in body, f"/{path} leaked {leak!r} without login"
    assert page.locator("h1", has_text="StoreLens").count() == 1


def test_page_urls_refuse_when_logged_out(server: str, browser) -> None:
    # The first request of the fresh server process goes straight to a page URL:
    # Streamlit's pages/ folder fallback must not serve it.
    for path in URL_PATHS:
        context = browser.new_context()
        _login_form_only(context.new_page(), server, path)
        context.close()


def test_login_live_approve_edit_two_customers_analytics(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server)
    page.get_by_role("textbox", name="User name").fill("ann")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Live: both faces, one named.
    expect(page.locator("h1", has_text="Live")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Barack Obama").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("awaiting approval").first).to_be_visible()
    expect(page.locator("[data-testid='stImage'] img").nth(1)).to_be_visible(timeout=30_000)

    # Approvals: approve the unknown person with details.
    page.get_by_role("link", name="Approvals").click()
    expect(page.locator("h1", has_text="Approvals")).to_be_visible(timeout=30_000)
    # exact: the card's "existing customer" search is labelled "...name, e-mail or loyalty id".
    page.get_by_label("Name *", exact=True).fill("Joe Biden")
    page.get_by_label("E-mail", exact=True).fill("joe@example.com")
    page.get_by_label("Loyalty id", exact=True).fill("L-1003")
    page.get_by_text("The person agreed to be recognised").click()
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text("Joe Biden is now a customer")).to_be_visible(timeout=60_000)

    # Customers: the new customer is listed and has a profile.
    page.get_by_role("link", name="Customers").click()
    expect(page.locator("h1", has_text="Customers")).to_be_visible(timeout=30_000)
    page.get_by_label("Search by name, e-mail or loyalty id").fill("Biden")
    page.keyboard.press("Enter")
    expect(page.locator("h2", has_text="Joe Biden")).to_be_visible(timeout=30_000)

    # Edit two customers in a row: each one's form holds that customer's values.
    page.get_by_label("Search by name, e-mail or loyalty id").fill("")
    page.keyboard.press("Enter")
    expect(page.get_by_text("2 customer(s)")).to_be_visible(timeout=30_000)

    def pick(label: str, name: str) -> None:
        page.get_by_test_id("stSelectbox").filter(has_text="Profile").click()
        page.get_by_role("option", name=label).click()
        expect(page.locator("h2", has_text=name)).to_be_visible(timeout=30_000)
        page.wait_for_timeout(2000)  # the rerun finishes; the last profile's elements leave the page
        page.get_by_role("tab", name="Edit / merge / erase").click()
        expect(page.get_by_test_id("stForm").get_by_label("Name *", exact=True)).to_have_value(
            name, timeout=30_000
        )

    pick("Joe Biden (L-1003)", "Joe Biden")
    expect(page.get_by_test_id("stForm").get_by_label("Loyalty id", exact=True)).to_have_value("L-1003")
    page.get_by_test_id("stForm").get_by_label("Notes", exact=True).fill("first edit")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("notes: first edit")).to_be_visible(timeout=30_000)
    pick("Barack Obama (L-1001)", "Barack Obama")
    expect(page.get_by_test_id("stForm").get_by_label("Loyalty id", exact=True)).to_have_value("L-1001")
    expect(page.get_by_test_id("stForm").get_by_label("Notes", exact=True)).to_have_value("")
    page.get_by_test_id("stForm").get_by_label("E-mail", exact=True).fill("barack@example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("E-mail barack@example.com")).to_be_visible(timeout=30_000)
    page.screenshot(path=str(tmp_path / "customers-edit.png"))
    pick("Joe Biden (L-1003)", "Joe Biden")
    expect(page.get_by_test_id("stForm").get_by_label("Notes", exact=True)).to_have_value("first edit")
    expect(page.get_by_test_id("stForm").get_by_label("E-mail", exact=True)).to_have_value("joe@example.com")

    # Analytics opens with its KPIs and the floor-plan heatmap.
    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_text("Store visits").first).to_be_visible(timeout=60_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    context.close()
