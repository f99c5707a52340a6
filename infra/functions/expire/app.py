"""Expire function: the state machine's ``Expire`` task, and the hourly retention sweep.

* From Step Functions (``{"pending_id", "reason"}``): discard that pending identity.
* From the EventBridge schedule: purge every pending identity past its TTL, and
  send a heartbeat for each approval still waiting (``HeartbeatSeconds`` in the
  ASL catches executions whose identity vanished without a cancel).
"""

from __future__ import annotations

from typing import Any

from core.aws.approval_steps import expire_step
from infra.functions.runtime import log_json, services


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    svc = services()
    if isinstance(event, dict) and event.get("pending_id"):
        result = expire_step(event, svc.approvals)
        log_json(msg="pending identity expired", **result)
        return result
    report = svc.privacy.purge(actor="retention")
    beats = 0
    for pending in svc.repos.pending.list():
        beats += svc.workflow.heartbeat(pending.pending_id)
    log_json(msg="retention sweep", expired=report.expired, heartbeats=beats)
    return {"expired": list(report.expired), "heartbeats": beats}
