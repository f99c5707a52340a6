"""The work of the approval state machine's Lambda steps, callable without Lambda.

``infra/functions/{notify,record_decision,expire}/app.py`` are thin wrappers
around these; the Step Functions tests run the real ASL under moto and route
its Lambda invocations here, in-process.

Each step takes the state's ``Payload`` (see ``infra/statemachine/approval.asl.json``)
and returns a JSON-ready dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.aws.stepfunctions import decision_from_dict
from core.errors import NotFoundError, ValidationError
from core.models import PendingStatus

if TYPE_CHECKING:
    from core.approvals import ApprovalService
    from core.aws.stepfunctions import StepFunctionsWorkflow


def _pending_id(payload: dict[str, Any]) -> str:
    pending_id = payload.get("pending_id") if isinstance(payload, dict) else None
    if not isinstance(pending_id, str) or not pending_id:
        raise ValidationError("the step payload needs a 'pending_id'")
    return pending_id


def notify_step(
    payload: dict[str, Any], approvals: ApprovalService, workflow: StepFunctionsWorkflow
) -> dict[str, Any]:
    """``AwaitDecision``: keep the task token, then (first round) mail the approver."""
    pending_id = _pending_id(payload)
    token = payload.get("task_token")
    if not isinstance(token, str) or not token:
        raise ValidationError("the notify step needs the task token ($$.Task.Token)")
    workflow.register_task_token(pending_id, token)
    message_id = approvals.notify(pending_id) if payload.get("send_mail", True) else None
    return {"pending_id": pending_id, "message_id": message_id}


def record_decision_step(payload: dict[str, Any], approvals: ApprovalService) -> dict[str, Any]:
    """``RecordDecision``: carry out the decision; say whether it is still pending."""
    pending_id = _pending_id(payload)
    decision = decision_from_dict(payload.get("decision") or {})
    customer_id = approvals.record_decision(pending_id, decision)
    try:
        status = approvals.repos.pending.get(pending_id).status
    except NotFoundError:  # rejected identities may be deleted outright
        status = None
    return {
        "pending_id": pending_id,
        "action": decision.action,
        "customer_id": customer_id,
        "still_pending": status is PendingStatus.PENDING,
    }


def expire_step(payload: dict[str, Any], approvals: ApprovalService) -> dict[str, Any]:
    """``Expire``: nobody decided in time (or the wait was cancelled)."""
    pending_id = _pending_id(payload)
    try:
        approvals.expire(pending_id, actor=f"workflow:{payload.get('reason') or 'timeout'}")
    except NotFoundError:
        return {"pending_id": pending_id, "expired": False}
    return {"pending_id": pending_id, "expired": True}
