"""ApprovalWorkflow contract: InlineWorkflow and StepFunctionsWorkflow (real ASL under moto).

The workflow's collaborator is a fake ApprovalService that records what the
workflow asks of it, so these tests pin the workflow's own behaviour: start
notifies once per pending identity, submit records the decision exactly once,
a decision that leaves the identity pending keeps the workflow waiting, and
cancel or a finished approval refuses further decisions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConflictError, StoreLensError
from core.models import CustomerDetails, PendingIdentity, PendingKind, PendingStatus, new_id
from core.ports import ApprovalWorkflow, Decision

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass
class FakeApprovals:
    """Records the workflow's calls; decides like the real service would."""

    repos: Any
    notified: list[str] = field(default_factory=list)
    recorded: list[tuple[str, Decision]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def notify(self, pending_id: str) -> str:
        self.notified.append(pending_id)
        return f"msg-{len(self.notified)}"

    def record_decision(self, pending_id: str, decision: Decision) -> str | None:
        self.recorded.append((pending_id, decision))
        pending = self.repos.pending.get(pending_id)
        if decision.action == "not_this_person":
            pending.kind = PendingKind.NEW
        else:
            approved = decision.action == "approve"
            pending.status = PendingStatus.APPROVED if approved else PendingStatus.REJECTED
        self.repos.pending.update(pending)
        return None

    def expire(self, pending_id: str, actor: str = "retention") -> None:
        self.expired.append(pending_id)


@dataclass
class Harness:
    workflow: ApprovalWorkflow
    approvals: FakeApprovals
    repos: Any

    def eventually(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached")
            time.sleep(0.05)

    def waiting(self, pending_id: str) -> None:
        """Block until the workflow can take a decision (immediate locally).

        On Step Functions: the notify step has stored a new task token and the
        execution reports the task as submitted (see ``wait_task_submitted``).
        """
        tokens = getattr(self.workflow, "_tokens", None)
        if tokens is None:
            return
        from tests.aws.sfn_harness import wait_task_submitted

        rounds = self._rounds.get(pending_id, 0) + 1
        self._rounds[pending_id] = rounds
        self.eventually(lambda: bool((tokens.get(pending_id) or {}).get("task_token")))
        wf: Any = self.workflow
        wait_task_submitted(wf.client, wf.execution_arn(pending_id), rounds)

    def __post_init__(self) -> None:
        self._rounds: dict[str, int] = {}


@pytest.fixture(params=["local", "aws"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "local":
        from core.local.sqlite import SqliteRepositories
        from core.local.workflow import InlineWorkflow

        repos = SqliteRepositories(tmp_path / "storelens.db")
        approvals = FakeApprovals(repos)
        yield Harness(InlineWorkflow(repos, approvals), approvals, repos)
        repos.close()
        return
    from core.aws import approval_steps
    from core.aws.dynamodb import DynamoDbRepositories
    from core.aws.stepfunctions import StepFunctionsWorkflow
    from tests.aws.moto_support import client, unique
    from tests.aws.sfn_harness import approval_machine

    box: dict[str, Any] = {}
    handlers = {
        "notify": lambda p: approval_steps.notify_step(p, box["approvals"], box["workflow"]),
        "record_decision": lambda p: approval_steps.record_decision_step(p, box["approvals"]),
        "expire": lambda p: approval_steps.expire_step(p, box["approvals"]),
    }
    with approval_machine(handlers) as machine:
        repos = DynamoDbRepositories(prefix=unique("sl"), client=client("dynamodb"))
        repos.create_tables()
        approvals = FakeApprovals(repos)
        workflow = StepFunctionsWorkflow(
            approvals,
            state_machine_arn=machine.arn,
            repos=repos,  # type: ignore[arg-type]
            client=machine.sfn,
        )
        box.update(approvals=approvals, workflow=workflow)
        yield Harness(workflow, approvals, repos)


def _pending(repos: Any, kind: PendingKind = PendingKind.NEW) -> PendingIdentity:
    p = PendingIdentity(
        pending_id=new_id("pid"),
        kind=kind,
        status=PendingStatus.PENDING,
        created_at=T0,
        last_seen_at=T0,
        expires_at=T0 + timedelta(days=30),
        store_id="store-1",
        suggested_customer_id="cus_1" if kind is PendingKind.REVIEW else None,
    )
    repos.pending.add(p)
    return p


def test_start_notifies_once_per_pending_identity(harness: Harness) -> None:
    p = _pending(harness.repos)
    ref = harness.workflow.start(p)
    assert isinstance(ref, str) and p.pending_id in ref
    harness.eventually(lambda: harness.approvals.notified == [p.pending_id])
    assert harness.workflow.start(p) == ref
    time.sleep(0.2)
    assert harness.approvals.notified == [p.pending_id]


def test_submit_records_the_decision_once(harness: Harness) -> None:
    p = _pending(harness.repos)
    harness.workflow.start(p)
    harness.waiting(p.pending_id)
    details = CustomerDetails(name="Ada", email="ada@example.com", loyalty_id="L-1", consent=True)
    decision = Decision(action="approve", actor="alice", details=details)
    harness.workflow.submit(p.pending_id, decision)
    harness.eventually(lambda: len(harness.approvals.recorded) == 1)
    assert harness.approvals.recorded == [(p.pending_id, decision)]
    harness.eventually(lambda: harness.repos.pending.get(p.pending_id).status is PendingStatus.APPROVED)
    with pytest.raises(ConflictError):
        harness.workflow.submit(p.pending_id, Decision(action="reject", actor="bob"))
    time.sleep(0.2)
    assert len(harness.approvals.recorded) == 1


def test_a_decision_that_keeps_it_pending_keeps_waiting(harness: Harness) -> None:
    p = _pending(harness.repos, PendingKind.REVIEW)
    harness.workflow.start(p)
    harness.waiting(p.pending_id)
    harness.workflow.submit(p.pending_id, Decision(action="not_this_person", actor="alice"))
    harness.eventually(lambda: len(harness.approvals.recorded) == 1)
    harness.waiting(p.pending_id)
    harness.workflow.submit(p.pending_id, Decision(action="reject", actor="alice"))
    harness.eventually(lambda: len(harness.approvals.recorded) == 2)
    assert [d.action for _p, d in harness.approvals.recorded] == ["not_this_person", "reject"]
    # The workflow itself mailed only once; the service re-mails on "not this person".
    assert harness.approvals.notified == [p.pending_id]


def test_cancel_refuses_later_decisions(harness: Harness) -> None:
    p = _pending(harness.repos)
    harness.workflow.start(p)
    harness.waiting(p.pending_id)
    harness.workflow.cancel(p.pending_id, "erased")
    time.sleep(0.3)
    with pytest.raises(ConflictError):
        harness.workflow.submit(p.pending_id, Decision(action="reject", actor="bob"))
    assert harness.approvals.recorded == []


def test_forget_drops_the_waiting_approval(harness: Harness) -> None:
    # Erasure: nothing about the identity stays with the workflow, so no decision lands.
    p = _pending(harness.repos)
    harness.workflow.start(p)
    harness.waiting(p.pending_id)
    harness.workflow.forget(p.pending_id)
    with pytest.raises(StoreLensError):
        harness.workflow.submit(p.pending_id, Decision(action="reject", actor="bob"))
    time.sleep(0.2)
    assert harness.approvals.recorded == []
