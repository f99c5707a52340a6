"""Sign-in that lasts, in a real browser (Debian's Chromium driven by Playwright).

``streamlit run app.py`` (``st.App`` with the ``/session`` routes) over a tmp
store: a deep link while signed out shows the login form at that address and
lands there after login; the HttpOnly cookie is new at login (a planted one is
not promoted); refresh and a new tab stay signed in; logging out revokes the
session, so the old cookie replayed in a fresh browser opens nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.sessions import COOKIE_NAME
from core.users import UserStore
from tests.support.dashboard_server import dashboard_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "ann-password"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    data = tmp_path_factory.mktemp("signin") / "data"
    UserStore.for_data_dir(data).add("ann", PASSWORD, "admin")
    with dashboard_server(data) as base:
        yield base, data


@pytest.fixture(scope="module")
def server(served: tuple[str, Path]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield b
        b.close()


def _session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE_NAME), None)


def _expect_login_form(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)
    assert "Signed in as" not in page.locator("body").inner_text()


def _log_in(page) -> None:
    page.get_by_role("textbox", name="User name").fill("ann")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_deep_link_refresh_new_tab_logout_and_replay(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1300, "height": 900})
    # A session id planted before login (session fixation) must not become the signed-in session.
    host = server.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": COOKIE_NAME, "value": "planted-before-login", "domain": host, "path": "/"}])
    page = context.new_page()

    # Signed out, a bookmark to /customers shows the login form there, without "Page not found".
    page.goto(f"{server}/customers")
    _expect_login_form(page)
    page.wait_for_timeout(1000)  # a "Page not found" dialog would have appeared by now
    assert "Page not found" not in page.locator("body").inner_text()
    assert page.url.endswith("/customers")
    page.screenshot(path=str(tmp_path / "1-deep-link-login.png"))

    _log_in(page)
    expect(page.locator("h1", has_text="Customers")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
    assert page.url == f"{server}/customers"
    cookie = _session_cookie(context)
    assert cookie is not None and cookie["value"] != "planted-before-login"
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["expires"] > 0  # a Max-Age, not a browser-session cookie
    assert COOKIE_NAME not in page.evaluate("document.cookie")  # scripts cannot read it
    signed_in_value = cookie["value"]
    page.screenshot(path=str(tmp_path / "2-landed-on-customers.png"))

    # Refresh: still signed in, still on Customers.
    page.reload()
    expect(page.locator("h1", has_text="Customers")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=30_000)

    # A new tab of the same browser is signed in too.
    tab = context.new_page()
    tab.goto(f"{server}/analytics")
    expect(tab.get_by_text("Signed in as ann")).to_be_visible(timeout=60_000)
    expect(tab.locator("h1", has_text="Analytics")).to_be_visible(timeout=30_000)
    tab.screenshot(path=str(tmp_path / "3-new-tab.png"))
    tab.goto(server)  # Live, refreshing itself every 3 s
    expect(tab.locator("h1", has_text="Live")).to_be_visible(timeout=60_000)

    # Log out, refresh: signed out, the cookie is gone.
    page.get_by_role("button", name="Log out").click()
    _expect_login_form(page)
    # The other tab, left open on Live, drops to the login form by itself at its next refresh.
    _expect_login_form(tab)
    tab.close()
    page.reload()
    _expect_login_form(page)
    assert _session_cookie(context) is None
    page.screenshot(path=str(tmp_path / "4-logged-out.png"))
    context.close()

    # The old cookie, replayed in a fresh browser, opens nothing: the record is revoked.
    thief = browser.new_context()
    thief.add_cookies([{"name": COOKIE_NAME, "value": signed_in_value, "domain": host, "path": "/"}])
    stolen = thief.new_page()
    stolen.goto(f"{server}/customers")
    _expect_login_form(stolen)
    stolen.wait_for_timeout(1500)
    assert "Signed in as" not in stolen.locator("body").inner_text()
    thief.close()

    # Nor does the planted value.
    planted = browser.new_context()
    planted.add_cookies([{"name": COOKIE_NAME, "value": "planted-before-login", "domain": host, "path": "/"}])
    p = planted.new_page()
    p.goto(server)
    _expect_login_form(p)
    planted.close()


def test_a_second_login_gets_a_new_session_and_the_first_stays_valid(server: str, browser) -> None:
    from playwright.sync_api import expect

    values = []
    contexts = []
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        page.goto(server)
        _expect_login_form(page)
        _log_in(page)
        expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=60_000)
        values.append(_session_cookie(context)["value"])
        contexts.append(context)
    assert values[0] != values[1]
    # Logging out in one browser leaves the other signed in.
    first = contexts[0].pages[0]
    first.get_by_role("button", name="Log out").click()
    _expect_login_form(first)
    second = contexts[1].pages[0]
    second.reload()
    expect(second.get_by_text("Signed in as ann")).to_be_visible(timeout=60_000)
    for context in contexts:
        context.close()


def test_approval_link_survives_login(server: str, browser) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/approvals?token=abc.def")
    _expect_login_form(page)
    expect(page.get_by_text("Log in to open the approval link")).to_be_visible()
    _log_in(page)
    expect(page.locator("h1", has_text="Approvals")).to_be_visible(timeout=60_000)
    assert page.url == f"{server}/approvals?token=abc.def"
    context.close()


def test_a_used_or_forged_ticket_signs_nobody_in(server: str, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/session/start?ticket=forged&next=https://evil.example/")
    _expect_login_form(page)
    assert page.url.startswith(server)
    assert _session_cookie(context) is None
    context.close()


# Records the WebSocket sub-protocols the Streamlit frontend opens its connection with; on a
# reconnect the third one is the Streamlit session id it asks to resume.
RECORD_SOCKETS = """
(() => {
  const Original = window.WebSocket;
  window.__protocols = [];
  window.WebSocket = function (url, protocols) {
    window.__protocols.push(protocols);
    return (window.__ws = new Original(url, protocols));
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, Original);
})();
"""
# Another browser asks to resume that session id (its own XSRF token, the victim's session id).
PRESENT_SESSION_ID = """
(sessionId) => {
  const Original = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    return new Original(url, [...protocols.slice(0, 2), sessionId]);
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, Original);
}
"""


def test_a_streamlit_session_id_without_the_cookie_is_signed_out(server: str, browser) -> None:
    """The issue's attack: a second browser resuming the victim's Streamlit session is not signed in."""
    from playwright.sync_api import expect

    victim = browser.new_context()
    victim.add_init_script(RECORD_SOCKETS)
    page = victim.new_page()
    page.goto(server)
    _log_in(page)
    expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=60_000)
    page.evaluate("window.__ws.close()")  # the frontend reconnects, naming its session id
    page.wait_for_function("window.__protocols.at(-1).length === 3", timeout=30_000)
    session_id = page.evaluate("window.__protocols.at(-1)[2]")
    expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=30_000)

    attacker = browser.new_context()
    attacker.add_init_script(script=f"({PRESENT_SESSION_ID})({session_id!r})")
    stolen = attacker.new_page()
    stolen.goto(f"{server}/customers")
    _expect_login_form(stolen)
    stolen.wait_for_timeout(2000)
    assert "Signed in as" not in stolen.locator("body").inner_text()
    attacker.close()
    victim.close()


def test_a_ticket_link_opened_in_another_browser_signs_nobody_in(served: tuple[str, Path], browser) -> None:
    """Login CSRF: the attacker logs in, stops at the ticket link and hands it to a victim."""
    import sqlite3

    from playwright.sync_api import expect

    server, data = served
    attacker = browser.new_context()
    page = attacker.new_page()
    page.route("**/session/start*", lambda route: route.abort())  # stop at the ticket link
    page.goto(server)
    with page.expect_request("**/session/start*", timeout=60_000) as request:
        _log_in(page)
    links = [request.value.url]
    assert links and "ticket=" in links[0]
    with sqlite3.connect(data / "storelens.db") as db:  # the waiting ticket is bound to a browser
        [(bound,)] = db.execute("SELECT browser FROM login_tickets").fetchall()
    assert len(bound) == 64
    attacker.close()

    victim = browser.new_context()
    v = victim.new_page()
    v.goto(server)  # the victim has used the dashboard before: Streamlit gave them their own XSRF cookie
    _expect_login_form(v)
    v.goto(links[0])
    _expect_login_form(v)
    expect(v.get_by_text("did not complete")).to_be_visible(timeout=30_000)
    assert _session_cookie(victim) is None
    victim.close()


def test_first_administrator_is_signed_in_with_a_lasting_session(
    browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fresh install: the setup code creates the first admin, who is then signed in like any login."""
    from playwright.sync_api import expect

    data = tmp_path_factory.mktemp("first-run") / "data"
    with dashboard_server(data) as base:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/users")
        expect(page.get_by_text("Create the first administrator")).to_be_visible(timeout=60_000)
        code = (data / "setup-code").read_text().strip()
        page.get_by_role("textbox", name="Setup code").fill(code)
        page.get_by_role("textbox", name="Admin user name").fill("root")
        page.get_by_role("textbox", name="Password (8+ characters)").fill("root-password")
        page.get_by_role("textbox", name="Repeat password").fill("root-password")
        page.get_by_role("button", name="Create administrator").click()
        expect(page.locator("h1", has_text="Users")).to_be_visible(timeout=60_000)  # the page asked for
        assert page.url == f"{base}/users"
        page.reload()
        expect(page.get_by_text("Signed in as root")).to_be_visible(timeout=60_000)
        assert not (data / "setup-code").exists() and _session_cookie(context) is not None
        context.close()


def test_an_expired_session_is_refused(served: tuple[str, Path], browser) -> None:
    import sqlite3

    from playwright.sync_api import expect

    server, data = served
    context = browser.new_context()
    page = context.new_page()
    page.goto(server)
    _log_in(page)
    expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=60_000)
    with sqlite3.connect(data / "storelens.db") as db:  # the record's 12 hours are over
        db.execute("UPDATE sessions SET expires_at = 0 WHERE revoked_at IS NULL")
    page.reload()
    _expect_login_form(page)
    assert _session_cookie(context) is not None  # the browser still holds it; the server refuses it
    context.close()
