"""What every StoreLens Lambda shares: services built once per container.

Settings come from the function's ``STORELENS_*`` environment (set by
``infra/template.yaml``). Tests inject ready-made services with :func:`use`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from core.bootstrap import Services, build_services
from core.settings import Settings

log = logging.getLogger("storelens")
log.setLevel(logging.INFO)
_services: Services | None = None


def services() -> Services:
    """The container's services, built on first use (not at import time)."""
    global _services
    if _services is None:
        _services = build_services(Settings.from_env())
    return _services


def use(svc: Services | None) -> None:
    """Inject services (tests, local runners); ``None`` resets."""
    global _services
    _services = svc


def log_json(**fields: Any) -> None:
    log.info(json.dumps(fields, default=str, sort_keys=True))
