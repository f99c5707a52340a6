"""Helpers shared by the AWS tests and the contract tests' ``aws`` variants.

Every helper works inside an active ``moto.mock_aws()``; resource names are
unique per call so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "eu-west-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def fake_credentials() -> Iterator[None]:
    """Fake credentials so nothing can reach a real account."""
    saved = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def moto(config: dict[str, Any] | None = None) -> Iterator[None]:
    """``mock_aws()`` with fake credentials (function-scoped by construction)."""
    from moto import mock_aws

    with fake_credentials(), mock_aws(config=config) if config else mock_aws():
        yield


def client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)
