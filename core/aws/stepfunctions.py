"""StepFunctionsWorkflow: one Step Functions execution per pending identity.

The state machine is ``infra/statemachine/approval.asl.json``:

1. ``AwaitDecision`` invokes the *notify* Lambda with ``.waitForTaskToken``;
   the Lambda stores the task token here (:meth:`StepFunctionsWorkflow.register_task_token`)
   and, on the first round, sends the approval e-mail.
2. A human decides (dashboard or e-mail link); :meth:`submit` looks the token up
   and calls ``SendTaskSuccess`` with the decision as output.
3. ``RecordDecision`` invokes the *record_decision* Lambda, which calls
   ``record_decision`` of the approval callbacks. If the identity is still pending ("not
   this person" turns a review item into a new one and mails again) the
   machine loops back to 1 without another e-mail.
4. ``TimeoutSeconds`` / ``HeartbeatSeconds`` on the wait, or :meth:`cancel`
   (``SendTaskFailure``), lead to ``Expire``.

Executions are named after the pending id, so starting twice is harmless and
:meth:`describe` needs no lookup.

**Inline mode** (``drive_inline=True``) is for an emulator such as a local moto
server that records executions but cannot run our Lambdas: the workflow then
also performs the Lambdas' steps in-process (notify on start, record on submit,
stop the execution when done).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from core.aws._common import AwsAdapter, error_code, error_message
from core.errors import ConflictError, NotFoundError, ValidationError
from core.models import CustomerDetails, PendingIdentity, PendingStatus, utcnow
from core.ports import ApprovalCallbacks, Decision, DecisionAction

if TYPE_CHECKING:
    from core.aws.dynamodb import DynamoDbRepositories

#: The error name ``cancel`` sends with SendTaskFailure (caught in the ASL).
CANCELLED_ERROR = "StoreLens.Cancelled"
_STALE_TOKEN = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """A JSON-ready form of a decision (the SendTaskSuccess output)."""
    data: dict[str, Any] = {"action": decision.action.value, "actor": decision.actor}
    if decision.details is not None:
        data["details"] = asdict(decision.details)
    if decision.customer_id:
        data["customer_id"] = decision.customer_id
    return data


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """Parse :func:`decision_to_dict` output; ``ValidationError`` on bad shapes."""
    if not isinstance(data, dict) or not isinstance(data.get("action"), str):
        raise ValidationError("a decision needs an 'action'")
    details = data.get("details")
    if details is not None:
        if not isinstance(details, dict):
            raise ValidationError("decision 'details' must be an object")
        allowed = {"name", "email", "loyalty_id", "consent", "notes"}
        unknown = sorted(set(details) - allowed)
        if unknown:
            raise ValidationError(f"unknown detail field(s): {', '.join(unknown)}")
        details = CustomerDetails(**details)
    return Decision(
        action=DecisionAction.parse(data["action"]),
        actor=str(data.get("actor") or "unknown"),
        details=details,
        customer_id=data.get("customer_id"),
    )


#: Shortest approval wait; an identity already past its expiry still gets one round.
MIN_WAIT_SECONDS = 60


def wait_seconds(pending: PendingIdentity, now: datetime | None = None) -> int:
    """Seconds the approval may wait: until ``pending.expires_at``."""
    left = (pending.expires_at - (now or utcnow())).total_seconds()
    return max(MIN_WAIT_SECONDS, int(left))


class StepFunctionsWorkflow(AwsAdapter):
    """Implements ``core.ports.ApprovalWorkflow`` on AWS Step Functions.

    ``repos`` is the DynamoDB container; its ``approvals`` table keeps the task
    token of each waiting execution.
    """

    service = "stepfunctions"

    def __init__(
        self,
        approvals: ApprovalCallbacks,
        *,
        state_machine_arn: str,
        repos: DynamoDbRepositories,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        drive_inline: bool = False,
    ) -> None:
        self.approvals = approvals
        self.state_machine_arn = state_machine_arn
        self.repos = repos
        self.drive_inline = drive_inline
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)
        from core.aws.dynamodb import _Table

        self._tokens = _Table(repos, "approvals")

    def execution_arn(self, pending_id: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{pending_id}"

    # --------------------------------------------------------------- the port
    def start(self, pending: PendingIdentity) -> str:
        """Start the execution named ``pending_id`` (again: returns the existing one)."""
        payload = {
            "pending_id": pending.pending_id,
            "store_id": pending.store_id,
            "kind": pending.kind.value,
            "send_mail": True,
            # The ASL's TimeoutSecondsPath: wait until the identity expires (one setting,
            # STORELENS_PENDING_TTL_DAYS, for this, the dashboard and the S3 lifecycle).
            "wait_seconds": wait_seconds(pending),
        }
        try:
            resp = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=pending.pending_id, input=json.dumps(payload)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(pending.pending_id)
            if error_code(exc) == "StateMachineDoesNotExist":
                raise NotFoundError(f"state machine {self.state_machine_arn} does not exist") from exc
            raise
        arn = str(resp["executionArn"])
        # An update, not a put: the notify step may already have stored its token.
        self._set(pending.pending_id, execution_arn=arn, started_at=utcnow().isoformat())
        if self.drive_inline:
            self.approvals.notify(pending.pending_id)
        return arn

    def submit(self, pending_id: str, decision: Decision) -> None:
        """Deliver the decision to the waiting execution (``SendTaskSuccess``)."""
        if self.drive_inline:
            self.approvals.record_decision(pending_id, decision)
            if self.repos.pending.get(pending_id).status is not PendingStatus.PENDING:
                self._stop(pending_id, f"decided: {decision.action}")
            return
        token = self._claim(pending_id)
        try:
            self.client.send_task_success(taskToken=token, output=json.dumps(decision_to_dict(decision)))
        except ClientError as exc:
            if error_code(exc) in _STALE_TOKEN:
                raise ConflictError(
                    f"the approval for {pending_id} is no longer waiting ({error_message(exc)})"
                ) from exc
            self._unclaim(pending_id, token)  # a transient failure: let the next try use it
            raise

    def cancel(self, pending_id: str, reason: str) -> None:
        """Stop waiting (``SendTaskFailure``; the machine then expires the identity)."""
        if self.drive_inline:
            self._stop(pending_id, reason)
            return
        item = self._tokens.get(pending_id) or {}
        token = item.get("task_token")
        if token:
            try:
                self.client.send_task_failure(taskToken=token, error=CANCELLED_ERROR, cause=reason[:256])
            except ClientError as exc:
                if error_code(exc) not in _STALE_TOKEN:
                    raise
        else:
            self._stop(pending_id, reason)

    def forget(self, pending_id: str) -> None:
        """Erasure: drop the stored task token of ``pending_id``'s approval (as the inline workflow does).

        The execution history stays with Step Functions; it names only opaque ids.
        """
        self._tokens.delete(pending_id)

    # ----------------------------------------------------- used by the Lambdas
    def register_task_token(self, pending_id: str, task_token: str) -> None:
        """Remember the token of the waiting task (called by the notify Lambda)."""
        self._set(pending_id, task_token=task_token, waiting_since=utcnow().isoformat())

    def heartbeat(self, pending_id: str) -> bool:
        """``SendTaskHeartbeat`` for a waiting approval; ``False`` if none is waiting."""
        item = self._tokens.get(pending_id) or {}
        if not item.get("task_token"):
            return False
        try:
            self.client.send_task_heartbeat(taskToken=item["task_token"])
        except ClientError as exc:
            if error_code(exc) in _STALE_TOKEN:
                return False
            raise
        return True

    def describe(self, pending_id: str) -> str:
        """The execution status (``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``)."""
        try:
            resp = self.client.describe_execution(executionArn=self.execution_arn(pending_id))
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                raise NotFoundError(f"no approval execution for {pending_id}") from exc
            raise
        return str(resp["status"])

    # ---------------------------------------------------------------- helpers
    def _set(self, pending_id: str, **values: str) -> None:
        """Upsert attributes of the pending id's approvals item."""
        names = {f"#a{i}": k for i, k in enumerate(values)}
        self.repos.client.update_item(
            TableName=self._tokens.name,
            Key={"pending_id": {"S": pending_id}},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": {"S": v} for i, v in enumerate(values.values())},
        )

    def _claim(self, pending_id: str) -> str:
        """Take the waiting task's token so only one decision can use it.

        The removal is conditional on the token being unchanged, so two
        concurrent submits cannot both send, and a token the machine registers
        for its next round is never removed by mistake.
        """
        item = self._tokens.get(pending_id)
        token = (item or {}).get("task_token")
        if not token:
            raise ConflictError(f"the approval for {pending_id} is not waiting for a decision")
        try:
            self.repos.client.update_item(
                TableName=self._tokens.name,
                Key={"pending_id": {"S": pending_id}},
                UpdateExpression="REMOVE task_token",
                ConditionExpression="task_token = :t",
                ExpressionAttributeValues={":t": {"S": str(token)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(f"the approval for {pending_id} was decided concurrently") from exc
            raise
        return str(token)

    def _unclaim(self, pending_id: str, token: str) -> None:
        try:
            self.repos.client.update_item(
                TableName=self._tokens.name,
                Key={"pending_id": {"S": pending_id}},
                UpdateExpression="SET task_token = :t",
                ConditionExpression="attribute_not_exists(task_token)",
                ExpressionAttributeValues={":t": {"S": token}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _stop(self, pending_id: str, reason: str) -> None:
        try:
            self.client.stop_execution(executionArn=self.execution_arn(pending_id), cause=reason[:256])
        except ClientError as exc:
            if error_code(exc) not in {"ExecutionDoesNotExist", "ExecutionNotRunning"}:
                raise
        self._tokens.update(pending_id, remove=("task_token",))
