from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from core.errors import TokenError
from core.local.sqlite import SqliteRepositories
from core.tokens import TokenSigner


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_issue_and_verify() -> None:
    signer = TokenSigner("s3cret")
    claims = signer.verify(signer.issue("pid_1", "approve", ttl_seconds=60))
    assert (claims.pending_id, claims.action) == ("pid_1", "approve")
    assert isinstance(claims.expires_at, datetime)


def test_forged_tokens_are_refused() -> None:
    signer = TokenSigner("s3cret")
    token = signer.issue("pid_1", "reject", ttl_seconds=60)
    _body, sig = token.split(".")
    other = TokenSigner("s3cret").issue("pid_2", "approve", ttl_seconds=60)
    with pytest.raises(TokenError, match="bad signature"):
        signer.verify(f"{other.split('.')[0]}.{sig}")  # someone else's payload, our signature
    with pytest.raises(TokenError, match="bad signature"):
        TokenSigner("another-secret").verify(token)
    with pytest.raises(TokenError, match="malformed"):
        signer.verify("garbage")


def test_expired_tokens_are_refused() -> None:
    clock = Clock(1_000_000.0)
    signer = TokenSigner("s3cret", clock=clock)
    token = signer.issue("pid_1", "approve", ttl_seconds=60)
    clock.now += 61
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token)


def test_tokens_are_single_use(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "db.sqlite")
    signer = TokenSigner("s3cret")
    token = signer.issue("pid_1", "approve", ttl_seconds=60)
    assert signer.consume(token, repos.tokens).pending_id == "pid_1"
    with pytest.raises(TokenError, match="already been used"):
        signer.consume(token, repos.tokens)
    # The ledger is durable: a restarted process still refuses it.
    repos.close()
    with pytest.raises(TokenError, match="already been used"):
        signer.consume(token, SqliteRepositories(tmp_path / "db.sqlite").tokens)
