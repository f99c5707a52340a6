"""Cognito: verify user-pool ID and access tokens with PyJWT against the pool's JWKS.

Checks, in order: the ``kid`` names a key in the JWKS, the RS256 signature,
expiry (``exp``) and issued-at, the issuer
(``https://cognito-idp.<region>.amazonaws.com/<pool id>``), ``token_use``
(``id`` or ``access``) and the app client: ``aud`` for ID tokens,
``client_id`` for access tokens (Cognito access tokens carry no ``aud``).

The JWKS comes from an injectable ``fetch_jwks`` callable, so tests sign tokens
with a locally generated RSA key and no network is needed.

>>> verifier = CognitoVerifier(region="eu-west-1", user_pool_id="eu-west-1_abc",
...                            client_id="client123")                        # doctest: +SKIP
>>> verifier.verify(id_token).username                                       # doctest: +SKIP
'alice'
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import AuthError, MissingDependencyError

JwksFetcher = Callable[[str], dict[str, Any]]


def fetch_jwks_http(url: str) -> dict[str, Any]:
    """Fetch a JWKS document over HTTPS (the default fetcher)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


@dataclass(frozen=True)
class CognitoIdentity:
    """Who a verified token belongs to."""

    subject: str
    username: str
    email: str | None
    groups: tuple[str, ...]
    token_use: str
    claims: dict[str, Any] = field(repr=False)


class CognitoVerifier:
    """Verifies Cognito JWTs for one user pool and app client."""

    def __init__(
        self,
        *,
        region: str,
        user_pool_id: str,
        client_id: str,
        fetch_jwks: JwksFetcher | None = None,
        leeway_seconds: int = 30,
        issuer: str | None = None,
        jwks_ttl_seconds: int = 3600,
        jwks_url: str | None = None,
    ) -> None:
        if not user_pool_id or not client_id:
            raise AuthError(
                "Cognito verification needs STORELENS_COGNITO_USER_POOL_ID and STORELENS_COGNITO_CLIENT_ID"
            )
        self.client_id = client_id
        self.issuer = issuer or f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        # An emulator serves the keys at its own address while tokens keep the
        # AWS issuer (moto: ``<endpoint>/<pool id>/.well-known/jwks.json``).
        self.jwks_url = jwks_url or f"{self.issuer}/.well-known/jwks.json"
        self._fetch = fetch_jwks or fetch_jwks_http
        self.leeway = leeway_seconds
        self._ttl = jwks_ttl_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _key(self, kid: str) -> Any:
        try:
            from jwt.algorithms import RSAAlgorithm
        except ImportError as exc:  # pragma: no cover
            raise MissingDependencyError("Cognito login needs PyJWT: pip install 'pyjwt[crypto]'") from exc
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self._ttl
            if kid not in self._keys or stale:
                # Unknown kid: the pool may have rotated keys; refetch once.
                doc = self._fetch(self.jwks_url)
                self._keys = {k["kid"]: RSAAlgorithm.from_jwk(json.dumps(k)) for k in doc.get("keys", [])}
                self._fetched_at = time.monotonic()
            if kid not in self._keys:
                raise AuthError("token signed with an unknown key")
            return self._keys[kid]

    def verify(self, token: str, *, token_use: str | None = None) -> CognitoIdentity:
        """Verify ``token``; ``token_use`` restricts to ``"id"`` or ``"access"``.

        Raises :class:`AuthError` with the reason on any failure.
        """
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from exc
        if header.get("alg") != "RS256":
            raise AuthError(f"unexpected token algorithm {header.get('alg')!r}")
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        use = claims.get("token_use")
        if use not in ("id", "access") or (token_use and use != token_use):
            raise AuthError(f"token_use {use!r} is not accepted here")
        client = claims.get("aud") if use == "id" else claims.get("client_id")
        if client != self.client_id:
            raise AuthError("token issued to another app client")
        groups = claims.get("cognito:groups") or []
        return CognitoIdentity(
            subject=str(claims.get("sub", "")),
            username=str(claims.get("cognito:username") or claims.get("username") or claims.get("sub", "")),
            email=claims.get("email"),
            groups=tuple(str(g) for g in groups),
            token_use=str(use),
            claims=dict(claims),
        )


# ------------------------------------------------------------ password sign-in

#: The app-client auth flow the dashboard uses (infra/template.yaml must allow it).
PASSWORD_AUTH_FLOW = "USER_PASSWORD_AUTH"
#: ``ExplicitAuthFlows`` the template's app client must list for the dashboard.
REQUIRED_EXPLICIT_AUTH_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
_MFA_CHALLENGES = {"SMS_MFA", "SOFTWARE_TOKEN_MFA", "MFA_SETUP", "SELECT_MFA_TYPE", "EMAIL_OTP"}


class NewPasswordRequiredError(AuthError):
    """Cognito wants a new password first (a user made with ``admin-create-user``).

    Answer with :func:`answer_new_password` and this ``session`` (valid a few minutes).
    """

    def __init__(self, username: str, session: str) -> None:
        super().__init__("choose a new password to finish signing in (first sign-in)")
        self.username = username
        self.session = session


def _id_token(resp: dict[str, Any], username: str) -> str:
    """The ID token of an auth response, or the clear error for a challenge we cannot answer."""
    token = (resp.get("AuthenticationResult") or {}).get("IdToken")
    if token:
        return str(token)
    challenge = str(resp.get("ChallengeName") or "unknown")
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise NewPasswordRequiredError(username, str(resp.get("Session") or ""))
    if challenge in _MFA_CHALLENGES:
        raise AuthError(
            f"this account needs multi-factor authentication ({challenge}), which the dashboard's "
            "password sign-in does not support; ask an admin to turn MFA off for it "
            "(aws cognito-idp admin-set-user-mfa-preference) or sign in through the hosted UI"
        )
    raise AuthError(f"Cognito asks for a step the dashboard cannot answer: {challenge}")


def password_sign_in(client: Any, client_id: str, username: str, password: str) -> str:
    """``InitiateAuth`` with ``USER_PASSWORD_AUTH``; the ID token.

    Raises :class:`NewPasswordRequiredError` on a first sign-in, :class:`AuthError`
    for MFA or other challenges; botocore errors (wrong password) pass through.
    """
    resp = client.initiate_auth(
        AuthFlow=PASSWORD_AUTH_FLOW,
        ClientId=client_id,
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return _id_token(dict(resp), username)


def answer_new_password(
    client: Any, client_id: str, challenge: NewPasswordRequiredError, new_password: str
) -> str:
    """``RespondToAuthChallenge`` (``NEW_PASSWORD_REQUIRED``); the ID token.

    A password the pool's policy rejects raises :class:`AuthError` with Cognito's reason.
    """
    try:
        resp = client.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge.session,
            ChallengeResponses={"USERNAME": challenge.username, "NEW_PASSWORD": new_password},
        )
    except Exception as exc:  # botocore ClientError
        error = getattr(exc, "response", {}).get("Error", {})
        if error.get("Code") in {"InvalidPasswordException", "InvalidParameterException"}:
            raise AuthError(f"Cognito refused the new password: {error.get('Message', '')}") from exc
        if error.get("Code") in {"NotAuthorizedException", "CodeMismatchException", "ExpiredCodeException"}:
            raise AuthError("the sign-in session expired; sign in again with the temporary password") from exc
        raise
    return _id_token(dict(resp), challenge.username)
