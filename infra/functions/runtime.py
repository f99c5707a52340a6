"""What every StoreLens Lambda shares: services built once per container.

Settings come from the function's ``STORELENS_*`` environment (set by
``infra/template.yaml``). Tests inject ready-made services with :func:`use`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from core.aws.secrets import SECRET_ARN_ENV, link_signing_key
from core.bootstrap import Services, build_services
from core.settings import Settings

log = logging.getLogger("storelens")
log.setLevel(logging.INFO)
_services: Services | None = None


def services() -> Services:
    """The container's services, built on first use (not at import time)."""
    global _services
    if _services is None:
        _services = build_services(settings_from_env())
    return _services


def settings_from_env(environ: dict[str, str] | None = None, **clients: Any) -> Settings:
    """The function's settings; the link-signing key is read from Secrets Manager
    (``LINK_SECRET_ARN``) at run time, never passed in the environment."""
    env = dict(os.environ if environ is None else environ)
    settings = Settings.from_env(env)
    arn = env.get(SECRET_ARN_ENV, "")
    if arn and not settings.secret_key:
        key = link_signing_key(
            arn,
            client=clients.get("secretsmanager"),
            region=settings.aws_region,
            endpoint_url=settings.endpoint_for("secretsmanager"),
        )
        settings = Settings.from_env(env, secret_key=key)
    return settings


def use(svc: Services | None) -> None:
    """Inject services (tests, local runners); ``None`` resets."""
    global _services
    _services = svc


def log_json(**fields: Any) -> None:
    log.info(json.dumps(fields, default=str, sort_keys=True))
