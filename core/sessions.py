"""Dashboard sign-in that lasts: a signed, HttpOnly session cookie backed by a server record.

How a local sign-in goes (``app.py`` mounts the routes of :mod:`core.web`):

1. The login form checks the password (rate limited) and asks
   :meth:`SessionManager.issue_ticket` for a one-time ticket (60 s, stored
   hashed, bound to the browser that logged in).
2. The page sends the browser to ``/session/start?ticket=...``. That route
   redeems the ticket (:meth:`SessionManager.start`), which revokes any
   session the browser already presented and creates a **new** random session
   id (so a cookie planted before login is never promoted), sets the cookie
   ``storelens_session`` (HttpOnly, SameSite=Lax, ``Secure`` over HTTPS,
   Max-Age = the session's life) and redirects to the page that was asked for
   (:func:`safe_next`: same-origin relative paths only).
3. Every script run reads the cookie (``st.context.cookies``) and calls
   :meth:`SessionManager.user_for`: the signature and age are checked with
   ``itsdangerous``, then the server record (known, not revoked, not expired)
   and the user (still exists; the role is read fresh, so a role change
   applies at once).
4. Log out revokes the record and ``/session/end`` clears the cookie.

Why ``itsdangerous`` (Pallets, the signing layer of Flask's sessions): a
maintained HMAC signer with key derivation per purpose (``salt``), a signed
timestamp for the maximum age and constant-time comparison, so none of that
is hand-rolled here. The key is random, made once and kept in
``<data_dir>/session-secret`` (mode 0600). The signature only keeps forged
and tampered cookies from reaching the database; the record decides.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from core.users import User

COOKIE_NAME = "storelens_session"
SECRET_FILE = "session-secret"
#: How long a sign-in lasts (absolute, from login).
SESSION_SECONDS = 12 * 3600
#: How long the login form's ticket may wait to be redeemed.
TICKET_SECONDS = 60
START_PATH = "/session/start"
END_PATH = "/session/end"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_SAFE_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9\-._~/%?&=+,:;@!$*'()]*$")


def safe_next(value: str | None) -> str:
    """``value`` if it is a same-origin relative path (``/customers?x=1``), else ``/``.

    Refuses absolute URLs, scheme-relative ``//host`` and ``/\\host`` (browsers
    read a backslash as a slash), control characters and fragments: a login
    link can never send the browser to another site.
    """
    if not value or len(value) > 2000 or not _SAFE_NEXT.match(value):
        return "/"
    return value


def load_secret(data_dir: Path) -> bytes:
    """The data dir's session-signing key, created (random, 32 bytes, mode 0600) on first use.

    Several dashboard processes may start at once: the file is created with
    ``O_EXCL`` and whoever loses the race reads the winner's key.
    """
    path = Path(data_dir) / SECRET_FILE
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            text = path.read_text().strip()
            if text:
                return text.encode()
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty; delete it to make a new key") from None
    key = secrets.token_hex(32)
    with open(fd, "w") as fh:
        fh.write(key)
    return key.encode()


class SessionStore(Protocol):
    """Where session records and login tickets live (``core.local.sessions.SqliteSessions``)."""

    def create_ticket(self, user_name: str, next_path: str, ttl_seconds: float, browser: str = "") -> str: ...
    def redeem_ticket(self, ticket: str) -> tuple[str, str, str] | None: ...
    def create(self, user_name: str, ttl_seconds: float) -> str: ...
    def lookup(self, session_id: str) -> str | None: ...
    def revoke(self, session_id: str) -> None: ...
    def revoke_user(self, user_name: str) -> int: ...


@dataclass(frozen=True, slots=True)
class StartedSession:
    """What ``/session/start`` sends back: the cookie value, its life, where to go."""

    cookie: str
    max_age: int
    next_path: str
    user_name: str


class SessionManager:
    """Tickets, signed cookies and session records for one data dir.

    ``find_user(name)`` returns the current :class:`User` (role read fresh) or
    ``None`` when the user no longer exists.
    """

    def __init__(
        self,
        store: SessionStore,
        secret: bytes,
        find_user: Callable[[str], User | None],
        *,
        session_seconds: int = SESSION_SECONDS,
        ticket_seconds: int = TICKET_SECONDS,
    ) -> None:
        self.store = store
        self.find_user = find_user
        self.session_seconds = session_seconds
        self.ticket_seconds = ticket_seconds
        self._signer = TimestampSigner(secret, salt="storelens-session")

    # -- the cookie
    def sign(self, session_id: str) -> str:
        return self._signer.sign(session_id).decode()

    def _session_id(self, cookie: str | None) -> str | None:
        """The session id inside a genuine, young enough cookie; ``None`` otherwise."""
        if not cookie:
            return None
        try:
            raw = self._signer.unsign(cookie, max_age=self.session_seconds)
        except (BadSignature, SignatureExpired):  # SignatureExpired is a BadSignature; both named for clarity
            return None
        return raw.decode()

    # -- the flow
    def issue_ticket(self, user: User, next_path: str | None, browser: str = "") -> str:
        """After a right password: a one-time ticket for ``/session/start``.

        ``browser`` identifies the browser that logged in (``core.web.browser_binding``);
        only a request from that browser can redeem the ticket, so a ticket
        link handed to someone else signs nobody in (login CSRF).
        """
        bound = _digest(browser) if browser else ""
        return self.store.create_ticket(user.name, safe_next(next_path), self.ticket_seconds, bound)

    def start(self, ticket: str, old_cookie: str | None = None, browser: str = "") -> StartedSession | None:
        """Redeem ``ticket``: revoke the browser's old session, create a new one; ``None`` if invalid.

        Invalid: unknown, used, expired, made for another browser, or naming a removed user.
        """
        redeemed = self.store.redeem_ticket(ticket)
        if redeemed is None:
            return None
        user_name, next_path, bound = redeemed
        if bound and not hmac.compare_digest(bound, _digest(browser) if browser else ""):
            return None
        if self.find_user(user_name) is None:
            return None
        old = self._session_id(old_cookie)
        if old is not None:
            self.store.revoke(old)
        session_id = self.store.create(user_name, self.session_seconds)
        return StartedSession(self.sign(session_id), self.session_seconds, safe_next(next_path), user_name)

    def user_for(self, cookie: str | None) -> User | None:
        """The signed-in user for a cookie value: signature, age, server record and user all checked."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return None
        name = self.store.lookup(session_id)
        return self.find_user(name) if name is not None else None

    def end(self, cookie: str | None) -> None:
        """Revoke the session a cookie names (log out); unknown or forged cookies are ignored."""
        session_id = self._session_id(cookie)
        if session_id is not None:
            self.store.revoke(session_id)

    def end_all(self, user_name: str) -> int:
        """Revoke every session of a user (password reset, removal)."""
        return self.store.revoke_user(user_name)
