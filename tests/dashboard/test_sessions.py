"""Sessions that last: tickets, the signed cookie, the server record, the /session routes,
and the failed-attempt limit shared by several dashboard processes on one data dir."""

from __future__ import annotations

import contextlib
import multiprocessing
import stat
import threading
from pathlib import Path

import pytest

from core.auth import LocalAuthenticator, create_first_admin, setup_code, user_from_oidc_claims
from core.errors import AuthError
from core.local.sessions import SqliteLoginLimiter, SqliteSessions, local_session_manager
from core.sessions import COOKIE_NAME, SESSION_SECONDS, SessionManager, load_secret, safe_next
from core.users import User, UserStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _manager(tmp_path: Path, clock: Clock | None = None) -> tuple[SessionManager, UserStore]:
    users = UserStore.for_data_dir(tmp_path, iterations=1000)
    users.add("ann", "ann-password", "admin")

    def find(name: str) -> User | None:
        return next((u for u in users.list() if u.name == name), None)

    store = SqliteSessions.for_data_dir(tmp_path, clock or Clock())
    return SessionManager(store, load_secret(tmp_path), find), users


# ------------------------------------------------------------------ the session flow


def test_ticket_starts_a_new_session_once(tmp_path: Path) -> None:
    manager, _ = _manager(tmp_path)
    ticket = manager.issue_ticket(User("ann", "admin"), "/customers?q=1")
    started = manager.start(ticket)
    assert (
        started is not None and started.next_path == "/customers?q=1" and started.max_age == SESSION_SECONDS
    )
    assert manager.user_for(started.cookie) == User("ann", "admin")
    assert manager.start(ticket) is None  # single use


def test_every_login_gets_a_new_id_and_revokes_the_cookie_it_replaces(tmp_path: Path) -> None:
    manager, _ = _manager(tmp_path)
    first = manager.start(manager.issue_ticket(User("ann", "admin"), "/"))
    assert first is not None
    second = manager.start(manager.issue_ticket(User("ann", "admin"), "/"), old_cookie=first.cookie)
    assert second is not None and second.cookie != first.cookie
    assert manager.user_for(first.cookie) is None  # the pre-login cookie is never promoted
    assert manager.user_for(second.cookie) == User("ann", "admin")


def test_a_ticket_works_only_in_the_browser_that_logged_in(tmp_path: Path) -> None:
    """Login CSRF: a ticket link handed to another browser signs nobody in."""
    manager, _ = _manager(tmp_path)
    ticket = manager.issue_ticket(User("ann", "admin"), "/", browser="token-of-browser-a")
    assert manager.start(ticket, browser="token-of-browser-b") is None
    assert manager.start(ticket, browser="token-of-browser-a") is None  # the failed try used it up
    ticket = manager.issue_ticket(User("ann", "admin"), "/", browser="token-of-browser-a")
    assert manager.start(ticket) is None  # no XSRF cookie at all
    ticket = manager.issue_ticket(User("ann", "admin"), "/", browser="token-of-browser-a")
    assert manager.start(ticket, browser="token-of-browser-a") is not None


def test_browser_binding_reads_through_the_xsrf_mask() -> None:
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

    from core.web import browser_binding

    token = bytes(range(16))
    first, second = generate_xsrf_token_string(token, 1), generate_xsrf_token_string(token, 2)
    assert first != second  # Streamlit masks the same token differently each time
    assert browser_binding(first) == browser_binding(second) == token.hex()
    assert browser_binding(generate_xsrf_token_string(bytes(16), 1)) != token.hex()
    assert browser_binding(None) == "" and browser_binding("odd") == "odd"


def test_logout_revokes_and_forged_or_tampered_cookies_name_nobody(tmp_path: Path) -> None:
    manager, _ = _manager(tmp_path)
    started = manager.start(manager.issue_ticket(User("ann", "admin"), "/"))
    assert started is not None
    session_id = started.cookie.split(".")[0]
    assert manager.user_for(session_id) is None  # unsigned
    assert manager.user_for(started.cookie[:-2] + "xx") is None  # tampered signature
    other, _ = _manager(tmp_path / "other")
    assert other.user_for(started.cookie) is None  # another data dir's key
    manager.end(started.cookie)
    assert manager.user_for(started.cookie) is None
    manager.end("garbage")  # ignored


def test_expired_tickets_and_sessions_are_refused(tmp_path: Path) -> None:
    clock = Clock()
    manager, _ = _manager(tmp_path, clock)
    late = manager.issue_ticket(User("ann", "admin"), "/")
    clock.now += 61
    assert manager.start(late) is None
    started = manager.start(manager.issue_ticket(User("ann", "admin"), "/"))
    assert started is not None
    clock.now += SESSION_SECONDS - 1
    assert manager.user_for(started.cookie) is not None
    clock.now += 2  # the record has expired (the signature's own age check is on wall time)
    assert manager.user_for(started.cookie) is None


def test_role_is_read_fresh_and_a_removed_user_is_signed_out(tmp_path: Path) -> None:
    manager, users = _manager(tmp_path)
    users.add("bob", "bob-password", "viewer")
    started = manager.start(manager.issue_ticket(User("bob", "viewer"), "/"))
    assert started is not None
    users.set_role("bob", "admin")
    assert manager.user_for(started.cookie) == User("bob", "admin")
    users.remove("bob")
    assert manager.user_for(started.cookie) is None
    assert manager.end_all("ann") == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/customers", "/customers"),
        ("/approvals?token=a.b-c_d", "/approvals?token=a.b-c_d"),
        ("", "/"),
        (None, "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/customers\r\nSet-Cookie: x=y", "/"),
        ("/a#frag", "/"),
        ("customers", "/"),
    ],
)
def test_next_is_a_same_origin_path_only(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_secret_is_made_once_owner_only(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert len(first) == 64 and load_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "session-secret").stat().st_mode) == 0o600


def test_session_records_store_only_a_hash_of_the_id(tmp_path: Path) -> None:
    manager, _ = _manager(tmp_path)
    started = manager.start(manager.issue_ticket(User("ann", "admin"), "/"))
    assert started is not None
    session_id = manager._session_id(started.cookie)
    assert session_id
    rows = SqliteSessions.for_data_dir(tmp_path).db.connection().execute("SELECT * FROM sessions").fetchall()
    assert len(rows) == 1 and session_id not in str(tuple(rows[0]))


# ------------------------------------------------------------------ the HTTP routes


def test_routes_set_an_httponly_cookie_redirect_safely_and_clear_it(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from core.web import session_routes

    UserStore.for_data_dir(tmp_path, iterations=1000).add("ann", "ann-password", "admin")
    manager = local_session_manager(tmp_path)
    client = TestClient(Starlette(routes=session_routes(lambda: manager)), base_url="http://127.0.0.1")

    ticket = manager.store.create_ticket("ann", "https://evil.example/", 60)  # stored unsafe: still refused
    r = client.get("/session/start", params={"ticket": ticket}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/", f"Max-Age={SESSION_SECONDS}"):
        assert attribute in set_cookie
    assert "Secure" not in set_cookie  # plain http here; https requests and https public URLs get it
    cookie = client.cookies[COOKIE_NAME]
    assert manager.user_for(cookie) == User("ann", "admin")

    ticket = manager.issue_ticket(User("ann", "admin"), "/approvals?token=t.1")
    r = client.get("/session/start", params={"ticket": ticket}, follow_redirects=False)
    assert r.headers["location"] == "/approvals?token=t.1"
    assert manager.user_for(cookie) is None  # replaced by the new login
    cookie = client.cookies[COOKIE_NAME]

    r = client.get("/session/start", params={"ticket": ticket}, follow_redirects=False)  # used
    assert r.headers["location"] == "/?signin=expired"

    # A ticket bound to a browser is redeemed only with that browser's XSRF cookie.
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

    from core.web import XSRF_COOKIE, browser_binding

    xsrf = generate_xsrf_token_string()
    ticket = manager.issue_ticket(User("ann", "admin"), "/", browser_binding(xsrf))
    r = client.get("/session/start", params={"ticket": ticket}, follow_redirects=False)
    assert r.headers["location"] == "/?signin=expired"
    ticket = manager.issue_ticket(User("ann", "admin"), "/customers", browser_binding(xsrf))
    client.cookies.set(XSRF_COOKIE, generate_xsrf_token_string(browser_binding_bytes(xsrf)))
    r = client.get("/session/start", params={"ticket": ticket}, follow_redirects=False)
    assert r.headers["location"] == "/customers"
    cookie = client.cookies[COOKIE_NAME]

    client.cookies.set(COOKIE_NAME, cookie)
    r = client.get("/session/end", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert f'{COOKIE_NAME}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert manager.user_for(cookie) is None


def browser_binding_bytes(xsrf: str) -> bytes:
    from core.web import browser_binding

    return bytes.fromhex(browser_binding(xsrf))


# ------------------------------------------------------------------ limits across processes


def _guess_in_process(data: str, start: int, barrier, results) -> None:
    """One dashboard process: 6 parallel wrong-password attempts; report how many were checked."""
    store = UserStore.for_data_dir(Path(data))
    checked = []
    real = store.verify

    def counting(name: str, password: str) -> User:
        checked.append(password)
        return real(name, password)

    store.verify = counting  # type: ignore[method-assign]
    auth = LocalAuthenticator(store, SqliteLoginLimiter.for_data_dir(Path(data)))

    def attempt(i: int) -> None:
        barrier.wait()
        with contextlib.suppress(AuthError):
            auth.login("ann", f"guess-{i}", client=f"10.0.{start}.{i}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(len(checked))


def test_login_limit_holds_across_two_processes(tmp_path: Path) -> None:
    """Two dashboard processes on one data dir, 12 attempts at once: 5 passwords get checked."""
    UserStore.for_data_dir(tmp_path, iterations=50_000).add("ann", "ann-password", "admin")
    SqliteLoginLimiter.for_data_dir(tmp_path)  # the tables exist before the race
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(12), ctx.Queue()
    procs = [ctx.Process(target=_guess_in_process, args=(str(tmp_path), n, barrier, results)) for n in (1, 2)]
    for p in procs:
        p.start()
    checked = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(checked) == 5
    auth = LocalAuthenticator(UserStore.for_data_dir(tmp_path), SqliteLoginLimiter.for_data_dir(tmp_path))
    with pytest.raises(AuthError, match="too many failed"):
        auth.login("ann", "ann-password")


def _setup_guesses(data: str, barrier, results) -> None:
    limiter = SqliteLoginLimiter.for_data_dir(Path(data))
    wrong = refused = 0
    for i in range(4):
        barrier.wait()
        try:
            create_first_admin(
                Path(data), f"{i:08d}", "root", "root-password", "root-password", limiter=limiter
            )
        except AuthError as exc:
            refused += "too many" in str(exc)
            wrong += "wrong setup code" in str(exc)
    results.put((wrong, refused))


def test_setup_code_limit_holds_across_two_processes(tmp_path: Path) -> None:
    code = setup_code(tmp_path)
    assert code is not None and not code.startswith("0000000")
    SqliteLoginLimiter.for_data_dir(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_setup_guesses, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(w for w, _ in outcomes) == 5 and sum(r for _, r in outcomes) == 3
    with pytest.raises(AuthError, match="too many failed"):
        create_first_admin(
            tmp_path,
            code,
            "root",
            "root-password",
            "root-password",
            limiter=SqliteLoginLimiter.for_data_dir(tmp_path),
        )
    assert UserStore.for_data_dir(tmp_path).is_empty()


def test_sqlite_limiter_releases_a_right_attempt_and_forgets_old_failures(tmp_path: Path) -> None:
    clock = Clock()
    limiter = SqliteLoginLimiter.for_data_dir(tmp_path, max_failures=2, window_seconds=60, clock=clock)
    stamp = limiter.reserve("user:a", "client:1")
    limiter.release(stamp, "user:a", "client:1")
    assert limiter.retry_after("user:a") == 0
    limiter.reserve("user:a")
    limiter.reserve("user:a")
    with pytest.raises(AuthError, match="too many"):
        limiter.reserve("user:a")
    assert limiter.retry_after("user:a") == pytest.approx(60)
    limiter.check("user:b")
    clock.now += 61
    limiter.check("user:a")


# ------------------------------------------------------------------ OIDC identity -> user


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"email": "ann@example.com", "cognito:groups": ["admin"], "is_logged_in": True},
            User("ann@example.com", "admin"),
        ),
        ({"email": "bob@example.com", "cognito:groups": ["staff"]}, User("bob@example.com", "viewer")),
        ({"email": "cy@example.com"}, User("cy@example.com", "viewer")),
        ({"cognito:username": "dee", "cognito:groups": "admin"}, User("dee", "admin")),
        ({"sub": "1234-abcd"}, User("1234-abcd", "viewer")),
        ({"is_logged_in": False}, None),
        ({}, None),
    ],
)
def test_oidc_identity_maps_to_a_user(claims: dict, expected: User | None) -> None:
    assert user_from_oidc_claims(claims) == expected


def test_an_expired_oidc_identity_is_signed_out() -> None:
    claims = {"email": "ann@example.com", "cognito:groups": ["admin"], "exp": 1_800_000_000}
    assert user_from_oidc_claims(claims, now=1_799_999_999) == User("ann@example.com", "admin")
    assert user_from_oidc_claims(claims, now=1_800_000_000) is None


def test_cli_password_replace_and_removal_sign_the_user_out(tmp_path: Path, monkeypatch) -> None:
    import io

    from core.cli import main

    UserStore.for_data_dir(tmp_path, iterations=1000).add("root", "root-password", "admin")
    manager, _ = _manager(tmp_path)
    sessions = [manager.start(manager.issue_ticket(User("ann", "admin"), "/")) for _ in range(2)]
    assert all(s is not None and manager.user_for(s.cookie) for s in sessions)
    monkeypatch.setattr("sys.stdin", io.StringIO("new-ann-password\n"))
    argv = [
        "users",
        "add",
        "ann",
        "--role",
        "admin",
        "--replace",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    assert all(manager.user_for(s.cookie) is None for s in sessions if s)
    again = manager.start(manager.issue_ticket(User("ann", "admin"), "/"))
    assert again is not None and manager.user_for(again.cookie)
    assert main(["users", "remove", "ann", "--data-dir", str(tmp_path)]) == 0
    assert SqliteSessions.for_data_dir(tmp_path).lookup(manager._session_id(again.cookie) or "") is None
