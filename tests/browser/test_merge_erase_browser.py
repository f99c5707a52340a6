"""Merge and erase in a real browser (Debian's Chromium driven by Playwright).

The store: Joe Biden was seen by a camera (a pending identity) and, while that
sighting waited, enrolled at the counter from a photo; Barack Obama was enrolled
twice by mistake. In the browser: the approval card's "existing customer" picker
shows both photos and merges only after the confirmation tick; the Customers page
folds the duplicate in; erasing a customer needs their name typed and leaves
nothing of them in the store.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from core.bootstrap import build_services
from core.errors import NotFoundError
from core.users import UserStore
from tests.conftest import make_settings
from tests.support.dashboard_server import dashboard_server
from tests.support.events import make_event
from tests.support.photos import photo_bytes

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "ann-password"


def _mirrored(jpeg: bytes) -> bytes:
    """Another photo of the same person: mirrored and smaller, re-encoded."""
    img = ImageOps.mirror(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    img = img.resize((img.width * 4 // 5, img.height * 4 // 5))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    data = tmp_path_factory.mktemp("merge") / "data"
    services = build_services(make_settings(data))
    assert services.ingest.ingest(make_event(photo_bytes("biden"))).pending_id
    services.customers.enroll("Joe Biden", [_mirrored(photo_bytes("biden"))], loyalty_id="L-2001")
    services.customers.enroll("Barack Obama", [photo_bytes("obama2")], loyalty_id="L-1001")
    services.customers.enroll("B. Obama", [photo_bytes("obama3")], email="bo@example.com")
    services.close()
    UserStore.for_data_dir(data).add("ann", PASSWORD, "admin")
    with dashboard_server(data) as base:
        yield base, data


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        yield b
        b.close()


def _customers(data: Path) -> dict[str, str]:
    services = build_services(make_settings(data))
    try:
        return {c.name: c.customer_id for c in services.customers.list(None, limit=100)}
    finally:
        services.close()


def _choose(page, box: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``box``, reopening it if a rerun closed it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        page.get_by_role("combobox", name=box).click()
        try:
            page.get_by_role("option").filter(has_text=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"no option {option!r} in {box!r}")


def _edit_tab(page) -> None:
    """Open the profile's edit tab once the rerun has replaced the last profile's elements."""
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name="Edit / merge / erase")
    expect(tab).to_have_count(1, timeout=30_000)
    page.wait_for_timeout(500)
    expect(tab).to_have_count(1, timeout=30_000)
    tab.click()


def test_merge_from_approvals_and_customers_then_erase(
    store: tuple[str, Path], browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, data = store
    before = _customers(data)
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.goto(base)
    page.get_by_role("textbox", name="User name").fill("ann")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1", has_text="Live")).to_be_visible(timeout=60_000)

    # Approvals: the camera's sighting of Joe goes to the customer enrolled at the counter.
    page.get_by_role("link", name="Approvals").first.click()
    expect(page.locator("h1", has_text="Approvals")).to_be_visible(timeout=30_000)
    page.get_by_text("This is an existing customer...").click()
    page.get_by_label("Search customers by name, e-mail or loyalty id").fill("Biden")
    page.keyboard.press("Enter")
    _choose(page, "Customer", "Joe Biden (L-2001)")
    merge = page.get_by_role("button", name="Add these photos to Joe Biden")
    expect(merge).to_be_disabled(timeout=30_000)  # nothing merges on one click
    picker = page.get_by_test_id("stExpander").filter(has_text="This is an existing customer...").last
    expect(picker.get_by_text("This person")).to_be_visible()
    expect(picker.locator("[data-testid='stImage'] img")).to_have_count(2, timeout=30_000)
    page.screenshot(path=str(tmp_path / "approvals-merge.png"))
    page.get_by_text("Yes, this is Joe Biden").click()
    expect(merge).to_be_enabled(timeout=30_000)
    merge.click()
    expect(page.get_by_text("Added to Joe Biden.")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("tab", name="New people (0)")).to_be_visible()

    # Customers: fold the duplicate "B. Obama" into Barack Obama.
    page.get_by_role("link", name="Customers").click()
    expect(page.locator("h1", has_text="Customers")).to_be_visible(timeout=30_000)
    _choose(page, "Profile", "Barack Obama (L-1001)")
    expect(page.locator("h2", has_text="Barack Obama")).to_be_visible(timeout=30_000)
    _edit_tab(page)
    _choose(page, "Duplicate to fold in", "B. Obama (bo@example.com)")
    expect(page.get_by_text("B. Obama (folded in)")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Merge", exact=True)).to_be_disabled()
    page.get_by_text("Yes, B. Obama is the same person as Barack Obama").click()
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_text("Merged B. Obama into Barack Obama.")).to_be_visible(timeout=60_000)

    # Erase Joe Biden: the button waits for his name.
    _choose(page, "Profile", "Joe Biden (L-2001)")
    expect(page.locator("h2", has_text="Joe Biden")).to_be_visible(timeout=30_000)
    _edit_tab(page)
    erase = page.get_by_role("button", name="Erase this customer")
    expect(erase).to_be_disabled(timeout=30_000)
    page.get_by_label("Type 'Joe Biden' to confirm").fill("Joe Biden")
    page.keyboard.press("Enter")
    expect(erase).to_be_enabled(timeout=30_000)
    erase.click()
    expect(page.get_by_text("Erased: 2 photos")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(tmp_path / "customers-erased.png"))
    context.close()

    # The store agrees with what the pages said.
    after = _customers(data)
    assert set(after) == {"Barack Obama"}
    assert after["Barack Obama"] == before["Barack Obama"]
    services = build_services(make_settings(data))
    try:
        obama = services.customers.profile(after["Barack Obama"])
        assert len(obama.faces) == 2  # his own photo and the duplicate's
        assert services.approvals.list_pending() == []
        with pytest.raises(NotFoundError):
            services.customers.profile(before["Joe Biden"])
    finally:
        services.close()
