"""The link-signing key from AWS Secrets Manager, read at run time and cached.

The stack's ``LinkSecret`` holds ``{"key": "..."}``. Functions get only its ARN
(``LINK_SECRET_ARN``), never the key itself: a key in a Lambda
environment variable is readable by anyone with ``lambda:GetFunctionConfiguration``
and rotating it would need a redeploy. Here a new container reads the current
key; a warm one re-reads it after ``ttl_seconds``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from core.aws._common import make_client
from core.errors import SettingsError

#: Environment variable naming the secret (set by infra/template.yaml); not a
#: ``STORELENS_*`` setting: only the Lambda runtime reads it, before the settings.
SECRET_ARN_ENV = "LINK_SECRET_ARN"
_lock = threading.Lock()
_cache: dict[str, tuple[float, str]] = {}


def link_signing_key(
    secret_id: str,
    *,
    client: Any = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    ttl_seconds: float = 3600.0,
) -> str:
    """The ``key`` field of the secret ``secret_id`` (``GetSecretValue``), cached per process."""
    with _lock:
        hit = _cache.get(secret_id)
        if hit is not None and time.monotonic() - hit[0] < ttl_seconds:
            return hit[1]
        secrets_client = make_client(
            "secretsmanager", client=client, region=region, endpoint_url=endpoint_url
        )
        raw = secrets_client.get_secret_value(SecretId=secret_id)["SecretString"]
        try:
            key = str(json.loads(raw)["key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"secret {secret_id} must be JSON with a non-empty 'key'") from exc
        if not key:
            raise SettingsError(f"secret {secret_id} has an empty 'key'")
        _cache[secret_id] = (time.monotonic(), key)
        return key


def forget_cached_keys() -> None:
    """Drop cached keys (tests; after a rotation)."""
    with _lock:
        _cache.clear()
