"""Shared plumbing for the dashboard pages: services, the signed-in user, errors, images.

Pages import from here so each page script reads like a description of its
screen. Nothing here holds business logic; it only reaches ``core``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import streamlit as st

from core.analytics import AnalyticsQueries
from core.auth import (
    AttemptLimiter,
    Authenticator,
    LocalAuthenticator,
    LoginRateLimiter,
    can,
    user_from_oidc_claims,
)
from core.bootstrap import Services, build_services
from core.errors import NotFoundError, StoreLensError
from core.sessions import COOKIE_NAME, END_PATH, START_PATH, SessionManager
from core.settings import Settings
from core.users import User

if TYPE_CHECKING:
    import pandas as pd

USER_KEY = "user"
FLASH_KEY = "flash"
TOKEN_KEY = "link_token"
NEXT_KEY = "next_path"


def page_guard(login_required: bool = True) -> User | None:
    """First line of every page script: make sure ``dashboard.py`` framed this run.

    With a ``pages/`` folder, Streamlit runs its old folder-based navigation
    until the first ``st.navigation`` call of the process, so the very first
    request for ``/live`` (or an ``AppTest`` rerun) can execute a page script
    directly, skipping the login gate. A page that finds itself run that way
    turns the folder mode off and reruns, so ``dashboard.py`` decides. Then,
    as defence in depth, a page that needs a user stops without one.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - Streamlit moved it; the gate in dashboard.py still holds
        folder_mode = False
    else:
        folder_mode = bool(PagesManager.uses_pages_directory)
    if folder_mode:
        # Run the real frame in place (as Streamlit does for the main page in
        # folder mode) so this run's widget events are not lost, then stop.
        import runpy

        from streamlit.runtime.scriptrunner import get_script_run_ctx

        PagesManager.uses_pages_directory = False
        ctx = get_script_run_ctx()
        main = ctx.pages_manager.main_script_path if ctx else "dashboard.py"
        runpy.run_path(str(main), run_name="__main__")
        st.stop()
    user = current_user()
    if login_required and user is None:
        st.warning("Please log in.")
        st.stop()
    return user


def settings() -> Settings:
    """Settings from the environment, read on every run (cheap, and tests change them)."""
    return Settings.from_env()


@st.cache_resource(show_spinner="Starting StoreLens services...")
def _services(s: Settings) -> Services:
    services = build_services(s)
    if services.purges_in_process:  # AWS expires through S3 lifecycle rules and a scheduled Lambda
        services.privacy.start_auto_purge()
    return services


def services() -> Services:
    """The process-wide services for the current settings (one per data dir / backend)."""
    return _services(settings())


def pending_count() -> int:
    """People waiting for a decision (shown in the navigation)."""
    return len(services().approvals.list_pending())


def analytics() -> AnalyticsQueries:
    return services().analytics


@st.cache_resource
def _limiter(_key: str) -> LoginRateLimiter:
    return LoginRateLimiter(max_failures=5, window_seconds=300)


def limiter() -> AttemptLimiter:
    """The failed-attempt counter for the first-admin setup code.

    The local authenticator's (in the data dir's SQLite file, so the limit
    holds across dashboard processes); an in-process one otherwise.
    """
    auth = authenticator()
    if isinstance(auth, LocalAuthenticator):
        return auth.limiter
    return _limiter(str(settings().data_dir))


def authenticator() -> Authenticator:
    # Built with the services, once per process: its rate limiter is shared by every browser session.
    return services().authenticator


def current_user() -> User | None:
    """The signed-in user of this run, as :func:`resolve_user` found it at the top of the run."""
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, User) else None


def cookie_sessions() -> bool:
    """Sign-in lasts in an HttpOnly cookie: local users and the ``/session`` routes of ``app.py``.

    Without the routes (``streamlit run dashboard.py``, ``AppTest``) a sign-in
    lives in the tab's Streamlit session only.
    """
    from core.web import routes_mounted

    return routes_mounted() and authenticator().kind == "local"


def session_manager() -> SessionManager:
    """The process's session manager for the local data dir (tickets, cookies, records)."""
    from core.local.sessions import local_session_manager

    return local_session_manager(settings().data_dir)


def oidc_login() -> bool:
    """Whether staff sign in through Streamlit's OIDC ``st.login`` (Cognito with an ``[auth]`` secret)."""
    if authenticator().kind != "cognito":
        return False
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):  # no secrets.toml at all
        return False


def resolve_user() -> User | None:
    """Who is signed in, decided afresh at the top of every run by ``dashboard.py``.

    * OIDC (``st.login``): Streamlit's identity cookie, mapped by
      :func:`core.auth.user_from_oidc_claims` (``cognito:groups`` -> role).
    * Cookie sessions: the ``storelens_session`` cookie, checked by
      :meth:`core.sessions.SessionManager.user_for` on every run, so a
      logout elsewhere, an expiry or a removed user takes effect at once.
    * Otherwise whatever the login form put in this tab's session state.
    """
    if oidc_login():
        st.session_state[USER_KEY] = (
            user_from_oidc_claims(st.user.to_dict()) if st.user.is_logged_in else None
        )
    elif cookie_sessions():
        st.session_state[USER_KEY] = session_manager().user_for(st.context.cookies.get(COOKIE_NAME))
    return current_user()


def end_sessions(name: str, keep: User | None = None) -> None:
    """Sign ``name`` out everywhere (password reset, removal); not the admin doing it to themselves."""
    if authenticator().kind == "local" and (keep is None or keep.name != name):
        session_manager().end_all(name)


def fragment_guard() -> None:
    """First line of an auto-refreshing fragment (Live, Demo progress).

    A fragment's reruns skip ``dashboard.py``; this checks the sign-in again,
    so a tab left open stops showing data once its session is revoked
    (logged out in another tab, password reset, expired): the whole page
    reruns and shows the login form.
    """
    if (cookie_sessions() or oidc_login()) and resolve_user() is None:
        st.rerun()


def go_to(url: str, label: str = "Continue") -> None:
    """Send the browser to ``url`` (a full page load, so the server can set or clear the cookie); stop."""
    st.html(f"<script>window.location.replace({json.dumps(url)});</script>", unsafe_allow_javascript=True)
    st.caption("Signing in..." if url.startswith(START_PATH) else "One moment...")
    st.link_button(label, url)  # if the script is blocked
    st.stop()


def signed_in(user: User) -> None:
    """The password (or setup code) was right: start the session and open the page asked for."""
    if cookie_sessions():
        from core.web import XSRF_COOKIE, browser_binding

        browser = browser_binding(st.context.cookies.get(XSRF_COOKIE))
        ticket = session_manager().issue_ticket(user, st.session_state.get(NEXT_KEY), browser)
        go_to(f"{START_PATH}?{urlencode({'ticket': ticket})}")
    st.session_state[USER_KEY] = user
    st.rerun()


def sign_out() -> None:
    """Log out: revoke the session record, clear this tab's state, clear the cookie."""
    user_cookie = st.context.cookies.get(COOKIE_NAME)
    cookie_mode, oidc = cookie_sessions(), oidc_login()
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if oidc:
        st.logout()
        st.stop()
    if cookie_mode:
        session_manager().end(user_cookie)
        go_to(END_PATH, "Log in again")
    st.rerun()


def actor() -> str:
    """How the signed-in user is named in audit entries."""
    user = current_user()
    return f"dashboard:{user.name}" if user else "dashboard:anonymous"


def allowed(permission: str) -> bool:
    return can(current_user(), permission)


def flash(message: str, kind: str = "success") -> None:
    """Show ``message`` on the next run (survives the ``st.rerun`` after an action)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(FLASH_KEY, None)
    if item:
        kind, message = item
        getattr(st, kind, st.info)(message)


@contextlib.contextmanager
def errors_shown(where: Any = None) -> Iterator[None]:
    """Show StoreLens errors with ``st.error`` instead of a traceback."""
    try:
        yield
    except StoreLensError as exc:
        (where or st).error(f"{type(exc).__name__.removesuffix('Error') or 'Error'}: {exc}")


@st.cache_data(max_entries=4000, ttl=600, show_spinner=False)
def _crop(data_dir: str, backend: str, key: str) -> bytes | None:
    try:
        return services().blobs.get(key)
    except NotFoundError:
        return None


def crop_bytes(key: str | None) -> bytes | None:
    """A face crop's bytes (cached), or ``None`` when it is gone (erased, rejected)."""
    if not key:
        return None
    s = settings()
    return _crop(str(s.data_dir), s.backend, key)


def show_crop(
    key: str | None, caption: str | None = None, width: int | Literal["stretch", "content"] = "stretch"
) -> None:
    data = crop_bytes(key)
    if data is None:
        st.caption("(photo removed)")
    else:
        st.image(data, caption=caption, width=width)


def customer_names(ids: list[str]) -> dict[str, str]:
    """Names for some customer ids; erased customers are left out."""
    out = {}
    repo = services().repos.customers
    for cid in dict.fromkeys(i for i in ids if i):
        with contextlib.suppress(NotFoundError):
            out[cid] = repo.get(cid).name
    return out


@st.cache_data(ttl=60, show_spinner=False)
def _cameras(data_dir: str, backend: str) -> list[str]:
    return analytics().cameras()


def cameras() -> list[str]:
    """Cameras that have recorded visits (cached for a minute)."""
    s = settings()
    return _cameras(str(s.data_dir), s.backend)


class BackgroundJob:
    """A long task (a demo replay) run on a thread, so page reruns neither block nor kill it.

    ``target(progress, stop)`` receives ``progress(fraction, message)`` and a
    ``threading.Event`` it must check to stop early.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.fraction = 0.0
        self.message = ""
        self.error: str | None = None
        self.result: Any = None
        self.started_by = ""

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, target: Any, started_by: str) -> bool:
        import threading

        with self._lock:
            if self.running:
                return False
            self.stop_event = threading.Event()
            self.fraction, self.message, self.error, self.result = 0.0, "starting", None, None
            self.started_by = started_by

            def progress(fraction: float, message: str = "") -> None:
                self.fraction = max(0.0, min(1.0, float(fraction)))
                self.message = message

            def run() -> None:
                try:
                    self.result = target(progress, self.stop_event)
                    self.message = "stopped" if self.stop_event.is_set() else "finished"
                except Exception as exc:  # shown on the page, never swallowed silently
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.message = "failed"

            self.thread = threading.Thread(target=run, name="storelens-demo", daemon=True)
            self.thread.start()
            return True

    def stop(self) -> None:
        self.stop_event.set()


@st.cache_resource
def _job(_data_dir: str) -> BackgroundJob:
    return BackgroundJob()


def demo_job() -> BackgroundJob:
    """The process-wide demo job for this data dir (shared by every session)."""
    return _job(str(settings().data_dir))


#: How long a result computed under an older store version may still be shown.
GRACE_SECONDS = 30.0
_seen: dict[tuple[Any, ...], tuple[int, float]] = {}  # query -> (version computed at, when)
_seen_lock = threading.Lock()


def _run(name: str, f: tuple[Any, ...], kwargs: tuple[Any, ...]) -> Any:
    from core.analytics import AnalyticsFilter

    return getattr(analytics(), name)(AnalyticsFilter(*f), **dict(kwargs))


@st.cache_data(ttl=30, max_entries=512, show_spinner=False)
def _query(data_dir: str, backend: str, name: str, f: tuple[Any, ...], kwargs: tuple[Any, ...]) -> Any:
    return _run(name, f, kwargs)


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _query_at(
    data_dir: str, backend: str, version: int, name: str, f: tuple[Any, ...], kwargs: tuple[Any, ...]
) -> Any:
    return _run(name, f, kwargs)


def query(name: str, f: Any, **kwargs: Any) -> Any:
    """An analytics query, cached per filter (every widget click reruns the page).

    Cached until the store's data changes when the backend can tell
    (``analytics().version()``, the local SQLite file's change counter: a rerun
    or a revisit with no new data reads nothing), else for 30 s.
    """
    s = settings()
    args = (f.start, f.end, f.cameras, f.tz)
    options = tuple(sorted(kwargs.items()))
    version = getattr(analytics(), "version", lambda: None)()
    if version is None:
        return _query(str(s.data_dir), s.backend, name, args, options)
    # While an ingest writes, the version moves every second: a result at most
    # GRACE_SECONDS old is served again (as the former 30 s cache did) rather
    # than recomputed on every click.
    key = (str(s.data_dir), s.backend, name, args, options)
    now = time.monotonic()
    with _seen_lock:
        seen = _seen.get(key)
        if seen is None or (seen[0] != version and now - seen[1] >= GRACE_SECONDS):
            seen = _seen[key] = (version, now)
            if len(_seen) > 2048:
                _seen.clear()
    return _query_at(str(s.data_dir), s.backend, seen[0], name, args, options)


def tz() -> str:
    """The store's time zone (``STORELENS_TIMEZONE``); every time the dashboard shows is in it."""
    return settings().timezone


def local(t: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment in the store's time zone, formatted."""
    return t.astimezone(ZoneInfo(tz())).strftime(fmt)


def today() -> date:
    """Today in the store's time zone."""
    return datetime.now(ZoneInfo(tz())).date()


def table(df: pd.DataFrame, key: str, filename: str, **kwargs: Any) -> None:
    """A table with a CSV download of exactly what it shows."""
    st.dataframe(df, key=key, **kwargs)
    index = not kwargs.get("hide_index", False)
    st.download_button(
        "Download CSV",
        # Made when clicked, not on every run of the page.
        lambda: df.to_csv(index=index).encode(),
        file_name=f"storelens-{filename}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        icon=":material/download:",
    )
