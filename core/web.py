"""The dashboard's own HTTP routes, mounted beside Streamlit by ``app.py`` (``st.App``).

``/session/start?ticket=...``
    Redeems the login form's one-time ticket (in the browser it was made for),
    sets the HttpOnly session cookie
    (a new session id every time) and redirects to the page asked for.
``/session/end``
    Revokes the session the cookie names, deletes the cookie, back to ``/``.

The session logic is :class:`core.sessions.SessionManager`; this module only
speaks HTTP (Starlette, which Streamlit itself runs on). Handlers run the
SQLite work on Starlette's thread pool, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.sessions import COOKIE_NAME, END_PATH, START_PATH, SessionManager

_mounted = False
#: Streamlit's XSRF cookie: random per browser, sent to the script (st.context.cookies) and to our routes.
XSRF_COOKIE = "_streamlit_xsrf"


def routes_mounted() -> bool:
    """Whether this process serves the ``/session/*`` routes (started through ``app.py``).

    Without them (``streamlit run dashboard.py``, or ``AppTest``) sign-in
    falls back to the browser tab's Streamlit session.
    """
    return _mounted


def browser_binding(xsrf_cookie: str | None) -> str:
    """What identifies a browser to both the login script and ``/session/start``: its XSRF token.

    Streamlit gives each browser a random XSRF cookie (``2|mask|masked token|time``,
    Tornado's format; the mask may change from response to response, the token
    does not). The login ticket is bound to the token, so a ticket works only
    in the browser that typed the password. Empty when Streamlit's XSRF
    protection is off (then tickets are not bound).
    """
    if not xsrf_cookie:
        return ""
    value = xsrf_cookie.strip("\"'")
    try:
        version, mask_hex, masked_hex, _ = value.split("|")
        if version != "2":
            return value
        mask, masked = bytes.fromhex(mask_hex), bytes.fromhex(masked_hex)
    except ValueError:
        return value
    return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked)).hex() if mask else value


def _manager_from_env() -> SessionManager:
    from core.local.sessions import local_session_manager
    from core.settings import Settings

    return local_session_manager(Settings.from_env().data_dir)


def _is_https(request: Any) -> bool:
    import os

    return request.url.scheme == "https" or os.environ.get("STORELENS_PUBLIC_URL", "").startswith("https:")


def session_routes(manager: Callable[[], SessionManager] = _manager_from_env) -> list[Any]:
    """The Starlette routes; ``manager`` gives the session manager (settings read per request)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    def _no_store(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the ticket never leaks onward
        return response

    async def start(request: Request) -> Response:
        ticket = request.query_params.get("ticket", "")
        started = await run_in_threadpool(
            manager().start,
            ticket,
            request.cookies.get(COOKIE_NAME),
            browser_binding(request.cookies.get(XSRF_COOKIE)),
        )
        if started is None:
            # A session this browser already has is left alone (a stale ticket is no reason to log out).
            return _no_store(RedirectResponse("/?signin=expired", status_code=303))
        response = RedirectResponse(started.next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            started.cookie,
            max_age=started.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_is_https(request),
        )
        return _no_store(response)

    async def end(request: Request) -> Response:
        await run_in_threadpool(manager().end, request.cookies.get(COOKIE_NAME))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(
            COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=_is_https(request)
        )
        return _no_store(response)

    return [Route(START_PATH, start, methods=["GET"]), Route(END_PATH, end, methods=["GET"])]


def dashboard_routes() -> list[Any]:
    """What ``app.py`` mounts: the session routes, and this process now signs in with cookies."""
    global _mounted
    _mounted = True
    return session_routes()
