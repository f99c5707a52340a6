"""The approval ASL: static checks and execution under moto through every path.

* ``asl-validator`` (npm) validates the definition: ``cd infra && npm ci``
  installs the pinned version into ``infra/node_modules`` (or set ``ASL_VALIDATOR``
  to a binary). Under ``CI`` a missing validator fails instead of skipping.
* Executions run on moto with ``execute_state_machine`` and the Lambda steps
  routed in-process (see ``tests/aws/sfn_harness.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.aws.sfn_harness import ASL_PATH, FUNCTIONS, approval_machine


def _asl_validator() -> str | None:
    """``$ASL_VALIDATOR``, else ``infra/node_modules`` (``cd infra && npm ci``), else
    ``~/.cache/storelens-node``, else ``PATH``."""
    explicit = os.environ.get("ASL_VALIDATOR")
    if explicit:
        return explicit
    for folder in (ASL_PATH.parents[1], Path.home() / ".cache" / "storelens-node"):
        candidate = folder / "node_modules" / ".bin" / "asl-validator"
        if candidate.exists():
            return str(candidate)
    return shutil.which("asl-validator")


def test_asl_is_valid_json_with_retry_on_every_task_and_a_guarded_wait() -> None:
    doc = json.loads(ASL_PATH.read_text())
    tasks = {n: s for n, s in doc["States"].items() if s["Type"] == "Task"}
    assert set(tasks) == {"AwaitDecision", "RecordDecision", "Expire"}
    for name, state in tasks.items():
        assert state.get("Retry"), f"{name} has no Retry"
    wait = tasks["AwaitDecision"]
    assert wait["Resource"].endswith(".waitForTaskToken")
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    # The wait ends when the identity expires (start computes wait_seconds from expires_at).
    assert wait["TimeoutSecondsPath"] == "$.wait_seconds" and "TimeoutSeconds" not in wait
    assert 0 < wait["HeartbeatSeconds"] <= 86400
    timeouts = [c for c in wait["Catch"] if "States.Timeout" in c["ErrorEquals"]]
    assert timeouts and timeouts[0]["Next"] == "Expire"
    # No retry may swallow a timeout: that would restart the wait (and re-mail).
    for retry in wait["Retry"]:
        assert not {"States.Timeout", "States.HeartbeatTimeout", "States.ALL"} & set(retry["ErrorEquals"])


def test_asl_placeholders_are_exactly_the_substituted_functions() -> None:
    import re

    found = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert found == set(FUNCTIONS)


def test_asl_validator_accepts_the_definition() -> None:
    binary = _asl_validator()
    assert binary, "asl-validator not installed: (cd infra && npm ci); scripts/test.sh does this"
    proc = subprocess.run([binary, "--json-path", str(ASL_PATH)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- executions


class Recorder:
    def __init__(self, still_pending_rounds: int = 0) -> None:
        self.rounds = still_pending_rounds
        self.recorded: list[dict[str, Any]] = []
        self.expired: list[dict[str, Any]] = []

    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.recorded.append(payload)
        still = len(self.recorded) <= self.rounds
        return {"pending_id": payload["pending_id"], "still_pending": still}

    def expire(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.expired.append(payload)
        return {"expired": True}

    def handlers(self) -> dict[str, Any]:
        return {"notify": lambda p: {"ok": True}, "record_decision": self.record, "expire": self.expire}


def _start(machine: Any, pending_id: str) -> str:
    return str(
        machine.sfn.start_execution(
            stateMachineArn=machine.arn,
            name=pending_id,
            input=json.dumps(
                {
                    "pending_id": pending_id,
                    "store_id": "store-1",
                    "kind": "new",
                    "send_mail": True,
                    "wait_seconds": 3600,
                }
            ),
        )["executionArn"]
    )


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_decision_path(action: str) -> None:
    rec = Recorder()
    with approval_machine(rec.handlers()) as m:
        arn = _start(m, "pid_path")
        [notify] = m.wait_calls("notify", 1)
        m.wait_waiting(arn)
        assert notify["send_mail"] is True and notify["pending_id"] == "pid_path"
        assert m.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        decision = {"action": action, "actor": "alice"}
        m.sfn.send_task_success(taskToken=notify["task_token"], output=json.dumps(decision))
        assert m.wait_status(arn) == "SUCCEEDED"
        assert rec.recorded == [{"pending_id": "pid_path", "decision": decision}]
        assert m.states_entered(arn) == ["AwaitDecision", "RecordDecision", "StillPending", "Decided"]
        assert rec.expired == []


def test_still_pending_loops_back_without_a_second_mail() -> None:
    rec = Recorder(still_pending_rounds=1)
    with approval_machine(rec.handlers()) as m:
        arn = _start(m, "pid_loop")
        [first] = m.wait_calls("notify", 1)
        m.wait_waiting(arn)
        m.sfn.send_task_success(
            taskToken=first["task_token"], output=json.dumps({"action": "not_this_person", "actor": "a"})
        )
        second = m.wait_calls("notify", 2)[1]
        m.wait_waiting(arn, 2)
        assert second["send_mail"] is False and second["task_token"] != first["task_token"]
        m.sfn.send_task_success(
            taskToken=second["task_token"], output=json.dumps({"action": "reject", "actor": "a"})
        )
        assert m.wait_status(arn) == "SUCCEEDED"
        assert [r["decision"]["action"] for r in rec.recorded] == ["not_this_person", "reject"]


def test_timeout_expires_the_pending_identity() -> None:
    rec = Recorder()
    with approval_machine(rec.handlers(), timeout_seconds=2, heartbeat_seconds=1) as m:
        arn = _start(m, "pid_slow")
        [notify] = m.wait_calls("notify", 1)
        m.wait_waiting(arn)
        # Heartbeats keep the wait alive past HeartbeatSeconds; then the overall timeout hits.
        for _ in range(3):
            m.sfn.send_task_heartbeat(taskToken=notify["task_token"])
            time.sleep(0.5)
        assert m.wait_status(arn, timeout=20) == "SUCCEEDED"
        assert rec.recorded == []
        assert [e["pending_id"] for e in rec.expired] == ["pid_slow"]
        assert rec.expired[0]["reason"] in {"States.Timeout", "States.HeartbeatTimeout"}
        assert m.states_entered(arn)[-2:] == ["Expire", "Expired"]


def test_missing_heartbeat_expires_the_pending_identity() -> None:
    rec = Recorder()
    with approval_machine(rec.handlers(), timeout_seconds=30, heartbeat_seconds=1) as m:
        started = time.monotonic()
        arn = _start(m, "pid_gone")
        assert m.wait_status(arn, timeout=20) == "SUCCEEDED"
        # Well before TimeoutSeconds. AWS documents a missed heartbeat as
        # States.Timeout (and States.HeartbeatTimeout); moto reports the former.
        assert time.monotonic() - started < 20
        assert [e["reason"] for e in rec.expired] in (["States.Timeout"], ["States.HeartbeatTimeout"])


def test_cancel_ends_without_decision_or_expiry() -> None:
    rec = Recorder()
    with approval_machine(rec.handlers()) as m:
        arn = _start(m, "pid_erased")
        [notify] = m.wait_calls("notify", 1)
        m.wait_waiting(arn)
        m.sfn.send_task_failure(taskToken=notify["task_token"], error="StoreLens.Cancelled", cause="erased")
        assert m.wait_status(arn) == "SUCCEEDED"
        assert m.states_entered(arn)[-1] == "Cancelled"
        assert rec.recorded == [] and rec.expired == []


def test_a_failing_record_step_fails_the_execution() -> None:
    def boom(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("DynamoDB is down")

    with approval_machine({"notify": lambda p: {}, "record_decision": boom}) as m:
        arn = _start(m, "pid_boom")
        [notify] = m.wait_calls("notify", 1)
        m.wait_waiting(arn)
        m.sfn.send_task_success(taskToken=notify["task_token"], output=json.dumps({"action": "reject"}))
        assert m.wait_status(arn) == "FAILED"
        assert m.states_entered(arn)[-1] == "DecisionFailed"
