"""Notify function: the ``AwaitDecision`` task (``.waitForTaskToken``).

Stores the task token and, on the first round, sends the approval e-mail via SES.
"""

from __future__ import annotations

from typing import Any

from core.aws.approval_steps import notify_step
from infra.functions.runtime import log_json, services


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    svc = services()
    result = notify_step(event, svc.approvals, svc.workflow)  # type: ignore[arg-type]
    log_json(msg="approval waiting", **result)
    return result
