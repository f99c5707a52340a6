"""Signed, single-use, expiring tokens for the approve/reject links in e-mails.

A token is ``base64url(payload) + "." + base64url(HMAC-SHA256(secret, payload))``
where the payload is compact JSON ``{"p": pending_id, "a": action, "n": nonce,
"e": expires_epoch}``. Verification checks the signature in constant time, then
expiry; *consuming* a token also records its nonce in the ``TokenLedger`` so a
second use is refused. Backend-independent: the ledger is SQLite locally and a
conditional DynamoDB put on AWS.

>>> signer = TokenSigner("secret")
>>> claims = signer.verify(signer.issue("pid_1", "approve", ttl_seconds=60))
>>> claims.pending_id, claims.action
('pid_1', 'approve')
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import TokenError
from core.ports import TokenLedger


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified token grants: one action on one subject.

    The subject is a pending identity for approval links, a customer for
    withdrawal links and a store for kiosk links (see :mod:`core.consent`).
    """

    pending_id: str
    action: str
    nonce: str
    expires_at: datetime

    @property
    def subject(self) -> str:
        """The id the token is about (``pending_id`` names it for approval links)."""
        return self.pending_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies link tokens with one HMAC secret."""

    def __init__(self, secret: str, *, clock: Callable[[], float] | None = None) -> None:
        if not secret:
            raise ValueError("a non-empty secret is required")
        self._key = hashlib.sha256(secret.encode("utf-8")).digest()
        self._now = clock or time.time

    def issue(self, pending_id: str, action: str, ttl_seconds: int) -> str:
        claims = {
            "p": pending_id,
            "a": action,
            "n": secrets.token_urlsafe(12),
            "e": int(self._now()) + ttl_seconds,
        }
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, token: str) -> LinkClaims:
        """Check signature and expiry (not single use: see :meth:`consume`)."""
        try:
            body, sig = token.strip().split(".")
            payload, given = _unb64(body), _unb64(sig)
        except (ValueError, binascii.Error) as exc:
            raise TokenError("the approval link is malformed") from exc
        if not hmac.compare_digest(given, self._sign(payload)):
            raise TokenError("the approval link is not valid (bad signature)")
        try:
            data = json.loads(payload)
            claims = LinkClaims(
                pending_id=str(data["p"]),
                action=str(data["a"]),
                nonce=str(data["n"]),
                expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("the approval link is malformed") from exc
        if claims.expires_at.timestamp() < self._now():
            raise TokenError(f"the approval link expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC")
        return claims

    def consume(self, token: str, ledger: TokenLedger) -> LinkClaims:
        """Verify and mark used; a second use raises :class:`TokenError`."""
        claims = self.verify(token)
        if not ledger.consume(claims.nonce, claims.expires_at):
            raise TokenError("the approval link has already been used")
        return claims

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()
