"""Record-decision function: the ``RecordDecision`` task after a human decided."""

from __future__ import annotations

from typing import Any

from core.aws.approval_steps import record_decision_step
from infra.functions.runtime import log_json, services


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    result = record_decision_step(event, services().approvals)
    log_json(msg="decision recorded", **result)
    return result
