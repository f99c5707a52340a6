"""The kiosk in Debian's Chromium: a customer joins from a QR link without staff login.

Starts ``streamlit run dashboard.py`` in consent-first mode over a tmp store, opens
the signed kiosk link, reads the notice, ticks consent, uploads a selfie, joins;
a forged link shows an error and no form, and the kiosk run reaches no other page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import build_services
from core.enrolment import consent_service
from core.settings import TOOL_VARIABLES
from tests.browser.test_dashboard_browser import CHROMIUM, _free_port, browser  # noqa: F401 (fixture)
from tests.conftest import TEST_SECRET, make_settings
from tests.support.photos import photo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kiosk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    data = tmp_path_factory.mktemp("kiosk") / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELENS_") or k in TOOL_VARIABLES}
    env.update(
        STORELENS_DATA_DIR=str(data),
        STORELENS_SECRET_KEY=TEST_SECRET,
        STORELENS_PUBLIC_URL=base,
        STORELENS_PRIVACY_MODE="consent-first",
    )
    log = (data.parent / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{(data.parent / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield base, data
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
