"""Dashboard authentication and roles, for both backends.

* **local**: users from :class:`core.users.UserStore` (``<data_dir>/users.json``),
  with a :class:`LoginRateLimiter` in front so passwords cannot be guessed fast.
* **aws**: Amazon Cognito. The user pool's ``USER_PASSWORD_AUTH`` flow returns
  an ID token that is verified with PyJWT against the pool's JWKS (issuer,
  audience = app client id, ``token_use == "id"``, expiry); members of the
  Cognito group ``admin`` get the admin role, everyone else is a viewer.

Roles: ``admin`` may approve, merge, edit, erase and run the demo; ``viewer``
sees everything and changes nothing. Pages ask :func:`can` before showing a
control and services-facing code calls :func:`require`.

>>> can(User("ann", "viewer"), "decide")
False
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from core.errors import AuthError, ConflictError, ValidationError
from core.settings import Settings
from core.users import User, UserStore

#: What each permission needs. Viewers may only ``view``.
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset({"admin", "viewer"}),
    "decide": frozenset({"admin"}),  # approve / reject / not a customer / merge / review
    "edit_customer": frozenset({"admin"}),
    "erase": frozenset({"admin"}),
    "run_demo": frozenset({"admin"}),
    "manage_users": frozenset({"admin"}),
}

SETUP_CODE_FILE = "setup-code"


def can(user: User | None, permission: str) -> bool:
    """Whether ``user`` holds ``permission`` (unknown permissions are denied)."""
    return user is not None and user.role in PERMISSIONS.get(permission, frozenset())


def require(user: User | None, permission: str) -> User:
    """Return ``user`` or raise ``AuthError`` when it may not ``permission``."""
    if user is None:
        raise AuthError("please log in")
    if not can(user, permission):
        raise AuthError(f"the {user.role} role may not {permission.replace('_', ' ')}")
    return user


# ------------------------------------------------------------------ rate limiting


class AttemptLimiter(Protocol):
    """A failed-attempt counter per key (``user:<name>``, ``client:<address>``, ``setup``).

    :class:`LoginRateLimiter` holds it in the process;
    :class:`core.local.sessions.SqliteLoginLimiter` in the data dir's SQLite
    file, shared by every dashboard process on it (the local backend's).
    """

    max_failures: int

    def retry_after(self, *keys: str) -> float: ...
    def check(self, *keys: str) -> None: ...
    def reserve(self, *keys: str) -> float: ...
    def release(self, stamp: float, *keys: str) -> None: ...
    def failed(self, *keys: str) -> None: ...
    def succeeded(self, *keys: str) -> None: ...


class LoginRateLimiter:
    """Sliding-window failure counter per key (user name and client address).

    After ``max_failures`` failures within ``window_seconds`` a key is locked
    until the oldest of those failures leaves the window. In-process and
    thread-safe: one instance is shared by every dashboard session.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again (0 when none is locked)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._prune(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[0] + self.window - now)
        return wait

    def check(self, *keys: str) -> None:
        wait = self.retry_after(*keys)
        if wait > 0:
            raise AuthError(f"too many failed logins; try again in {int(wait) + 1} s")

    def reserve(self, *keys: str) -> float:
        """Count an attempt as failed *before* checking the password; raise if a key is locked.

        Check and count happen under one lock, so N parallel attempts can check
        at most ``max_failures`` passwords (checking first and counting after
        let every attempt in flight through). Returns the stamp to hand to
        :meth:`release` when the password turns out right.
        """
        now = self._clock()
        with self._lock:
            wait = 0.0
            for key in keys:
                q = self._prune(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[0] + self.window - now)
            if wait > 0:
                raise AuthError(f"too many failed attempts; try again in {int(wait) + 1} s")
            for key in keys:
                self._failures[key].append(now)
        return now

    def release(self, stamp: float, *keys: str) -> None:
        """Take back a reserved attempt that succeeded."""
        with self._lock:
            for key in keys:
                q = self._failures.get(key)
                if q is not None and stamp in q:
                    q.remove(stamp)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._prune(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


# ------------------------------------------------------------------ authenticators


class Authenticator(Protocol):
    """Turns a user name and password into a :class:`User`, or raises ``AuthError``.

    ``kind`` names where users live (``local``, ``cognito``) for the login page's wording.
    """

    kind: str

    def login(self, username: str, password: str, client: str = "") -> User: ...

    def setup_code(self) -> str | None:
        """The one-time code for creating the first admin while there are no users, else ``None``."""


class LocalAuthenticator:
    """Users from ``users.json``, rate limited per user name and per client address.

    The local backend hands it a :class:`core.local.sessions.SqliteLoginLimiter`
    so the limit holds across every dashboard process on the data dir.
    """

    kind = "local"

    def __init__(self, store: UserStore, limiter: AttemptLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter or LoginRateLimiter()

    def login(self, username: str, password: str, client: str = "") -> User:
        username = username.strip()
        if not username or not password:
            raise AuthError("enter a user name and a password")
        keys = [f"user:{username.lower()}"] + ([f"client:{client}"] if client else [])
        stamp = self.limiter.reserve(*keys)  # counted as a failure until proven right
        user = self.store.verify(username, password)
        self.limiter.release(stamp, *keys)
        self.limiter.succeeded(keys[0])
        return user

    def setup_code(self) -> str | None:
        return setup_code(self.store.path.parent)


class NoAuthenticator:
    """Where no sign-in is configured: every login fails with ``reason``."""

    kind = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def login(self, username: str, password: str, client: str = "") -> User:
        raise AuthError(self.reason)

    def setup_code(self) -> str | None:
        return None


class CognitoAuthenticator:
    """Cognito user pool login (USER_PASSWORD_AUTH); the ID token is verified by
    :class:`core.aws.cognito.CognitoVerifier` against the pool's JWKS.

    ``client`` is an injected ``cognito-idp`` boto3 client; ``fetch_jwks`` an
    injected JWKS fetcher (``url -> dict``) for tests. With a Cognito endpoint
    override (a moto server) the keys are read from the emulator's address
    while the issuer stays the AWS one, as the emulator signs it.
    """

    kind = "cognito"
    ADMIN_GROUP = "admin"

    def __init__(
        self,
        settings: Settings,
        *,
        client: Any = None,
        fetch_jwks: Any = None,
        limiter: LoginRateLimiter | None = None,
    ) -> None:
        if not settings.cognito_user_pool_id or not settings.cognito_client_id:
            raise AuthError("set STORELENS_COGNITO_USER_POOL_ID and STORELENS_COGNITO_CLIENT_ID")
        from core.aws.cognito import CognitoVerifier

        self.settings = settings
        self._client = client
        endpoint = settings.endpoint_for("cognito")
        pool = settings.cognito_user_pool_id
        jwks_url = f"{endpoint.rstrip('/')}/{pool}/.well-known/jwks.json" if endpoint else None
        self.verifier = CognitoVerifier(
            region=settings.aws_region,
            user_pool_id=settings.cognito_user_pool_id,
            client_id=settings.cognito_client_id,
            fetch_jwks=fetch_jwks,
            jwks_url=jwks_url,
        )
        self.limiter = limiter or LoginRateLimiter()

    @property
    def issuer(self) -> str:
        return self.verifier.issuer

    def _cognito(self) -> Any:
        if self._client is None:
            import boto3  # lazy: only the aws backend needs it

            self._client = boto3.client(
                "cognito-idp",
                region_name=self.settings.aws_region,
                endpoint_url=self.settings.endpoint_for("cognito"),
            )
        return self._client

    def setup_code(self) -> str | None:
        """Cognito users are created in the user pool, never through the dashboard."""
        return None

    def verify_id_token(self, token: str) -> User:
        """Check signature, issuer, client, expiry and ``token_use``; map groups to a role."""
        try:
            identity = self.verifier.verify(token, token_use="id")
        except AuthError as exc:
            raise AuthError(f"invalid sign-in token: {exc}") from exc
        role = "admin" if self.ADMIN_GROUP in identity.groups else "viewer"
        return User(identity.username or identity.email or identity.subject, role)

    def login(self, username: str, password: str, client: str = "") -> User:
        username = username.strip()
        if not username or not password:
            raise AuthError("enter a user name and a password")
        keys = [f"user:{username.lower()}"] + ([f"client:{client}"] if client else [])
        self.limiter.check(*keys)
        from core.aws.cognito import password_sign_in

        try:
            # NEW_PASSWORD_REQUIRED raises NewPasswordRequiredError: answer with set_new_password.
            token = password_sign_in(self._cognito(), self.settings.cognito_client_id, username, password)
        except AuthError:
            raise
        except Exception as exc:  # botocore ClientError: NotAuthorized, UserNotFound...
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in {"NotAuthorizedException", "UserNotFoundException"}:
                self.limiter.failed(*keys)
                raise AuthError("wrong user name or password") from exc
            raise
        self.limiter.succeeded(keys[0])
        return self.verify_id_token(token)

    def set_new_password(self, challenge: Any, new_password: str) -> User:
        """Finish a first sign-in (``core.aws.cognito.NewPasswordRequiredError``) with a new password."""
        from core.aws.cognito import answer_new_password

        token = answer_new_password(self._cognito(), self.settings.cognito_client_id, challenge, new_password)
        return self.verify_id_token(token)


# ------------------------------------------------------------------ OIDC (st.login)

#: The Cognito group whose members are dashboard admins.
ADMIN_GROUP = "admin"


def user_from_oidc_claims(claims: Mapping[str, Any], now: float | None = None) -> User | None:
    """Map the identity Streamlit's ``st.login`` returns (``st.user``) to a StoreLens user.

    The name is the e-mail (the pool signs in with e-mail addresses), else the
    Cognito user name, else the subject; members of the Cognito group
    ``admin`` (the ID token's ``cognito:groups``) are admins, everyone else is
    a viewer. ``None`` when the identity names nobody (not logged in) or its
    ID token has expired (``exp``): Streamlit keeps the identity in its cookie
    for 30 days, so without this a user removed from the pool, or taken out of
    ``admin``, would keep their old role that long. The app client's ID tokens
    last 60 minutes; after that ``st.login`` runs again (Cognito's own session
    usually answers it without a password) and brings the current groups.

    >>> user_from_oidc_claims({"email": "ann@example.com", "cognito:groups": ["admin"]})
    User(name='ann@example.com', role='admin')
    """
    if not claims or claims.get("is_logged_in") is False:
        return None
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires <= (time.time() if now is None else now):
        return None
    name = claims.get("email") or claims.get("cognito:username") or claims.get("sub")
    if not name:
        return None
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):  # one group may arrive as a plain string
        groups = [groups]
    return User(str(name), "admin" if ADMIN_GROUP in groups else "viewer")


# ------------------------------------------------------------------ first run


def setup_code(data_dir: Path) -> str | None:
    """The one-time code that lets the first admin be created in the browser.

    Exists only while there are no users. It is written to
    ``<data_dir>/setup-code`` (mode 0600) and printed on the dashboard's
    console, like a Jupyter token, so only someone with access to the machine
    can claim the new installation.
    """
    data_dir = Path(data_dir)
    if not UserStore.for_data_dir(data_dir).is_empty():
        return None
    path = data_dir / SETUP_CODE_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    code = secrets.token_hex(4)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with open(fd, "w") as fh:
        fh.write(code)
    return code


def create_first_admin(
    data_dir: Path,
    code: str,
    name: str,
    password: str,
    repeat: str,
    limiter: AttemptLimiter | None = None,
    client: str = "",
) -> User:
    """Create the first admin if ``code`` matches the setup code; then retire the code.

    With a ``limiter``, wrong codes count like failed logins (for the setup
    form as a whole and per client), so the code cannot be guessed.
    """
    store = UserStore.for_data_dir(data_dir)
    if not store.is_empty():
        raise ConflictError("an administrator already exists; log in instead")
    keys = ["setup"] + ([f"client:{client}"] if client else [])
    stamp = limiter.reserve(*keys) if limiter is not None else 0.0
    expected = setup_code(data_dir) or ""
    if not hmac.compare_digest(code.strip().encode(), expected.encode()):
        raise AuthError("wrong setup code; it is printed in the terminal running the dashboard")
    if limiter is not None:
        limiter.release(stamp, *keys)
    if password != repeat:
        raise ValidationError("the passwords do not match")
    user = store.add(name, password, "admin")
    (Path(data_dir) / SETUP_CODE_FILE).unlink(missing_ok=True)
    return user
