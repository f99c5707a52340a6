"""Run the real approval ASL under moto, with its Lambda steps executed in-process.

moto executes state machines when ``execute_state_machine`` is on, and with
``lambda.use_docker=False`` it answers Lambda invocations from its "simple"
backend. We route those invocations to Python callables (normally the steps in
:mod:`core.aws.approval_steps`), so the ASL, its task tokens, timeouts and
Catch paths are exercised for real while the function bodies run here.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.aws.moto_support import REGION, client, moto, unique

ASL_PATH = Path(__file__).resolve().parents[2] / "infra" / "statemachine" / "approval.asl.json"
FUNCTIONS = {
    "NotifyFunctionArn": "notify",
    "RecordDecisionFunctionArn": "record_decision",
    "ExpireFunctionArn": "expire",
}
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

Handler = Callable[[dict[str, Any]], Any]


def load_definition(
    substitutions: dict[str, str], *, timeout_seconds: int | None = None, heartbeat_seconds: int | None = None
) -> str:
    """The ASL with ``${Name}`` placeholders filled, as DefinitionSubstitutions would.

    The timeouts can be shortened for tests (the deployed values are hours).
    """
    text = ASL_PATH.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise AssertionError("unfilled placeholder in the ASL")
    doc = json.loads(text)
    wait = doc["States"]["AwaitDecision"]
    if timeout_seconds is not None:
        wait.pop("TimeoutSecondsPath", None)
        wait["TimeoutSeconds"] = timeout_seconds
    if heartbeat_seconds is not None:
        wait["HeartbeatSeconds"] = heartbeat_seconds
    return json.dumps(doc)


@dataclass
class Machine:
    arn: str
    sfn: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn}
        while True:
            resp = self.sfn.get_execution_history(**kwargs)
            events.extend(resp["events"])
            if not resp.get("nextToken"):
                return events
            kwargs["nextToken"] = resp["nextToken"]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if e["type"].endswith("StateEntered")
        ]

    def wait_status(
        self,
        execution_arn: str,
        *,
        want: tuple[str, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"),
        timeout: float = 20.0,
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = str(self.sfn.describe_execution(executionArn=execution_arn)["status"])
            if status in want or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def wait_waiting(self, execution_arn: str, count: int = 1) -> None:
        wait_task_submitted(self.sfn, execution_arn, count)

    def wait_calls(self, name: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = [p for n, p in self.calls if n == name]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def wait_task_submitted(sfn: Any, execution_arn: str, count: int = 1, timeout: float = 20.0) -> None:
    """Block until the execution has submitted ``count`` tasks waiting for a callback.

    moto loses a callback that arrives while the ``.waitForTaskToken`` Lambda
    invocation is still in flight when HeartbeatSeconds is set (it arms the
    heartbeat watch only afterwards). A human never answers that fast; tests
    must wait for ``TaskSubmitted`` first.
    """
    deadline = time.monotonic() + timeout
    while True:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if sum(e["type"] == "TaskSubmitted" for e in events) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{execution_arn} did not reach {count} waiting task(s)")
        time.sleep(0.05)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


@contextmanager
def approval_machine(
    handlers: dict[str, Handler], *, timeout_seconds: int | None = None, heartbeat_seconds: int | None = None
) -> Iterator[Machine]:
    """moto (with state machine execution) + the approval ASL + in-process Lambdas.

    ``handlers`` maps ``notify`` / ``record_decision`` / ``expire`` to callables
    taking the payload. Use inside no other ``mock_aws``: this opens its own.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with moto(MOTO_CONFIG):
        iam = client("iam")
        role = iam.create_role(
            RoleName=unique("sfn-role"),
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = client("lambda")
        arns = {}
        suffix = unique("fn")
        for placeholder, name in FUNCTIONS.items():
            arns[placeholder] = lam.create_function(
                FunctionName=f"{name}-{suffix}",
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": _zip()},
            )["FunctionArn"]
        sfn = client("stepfunctions")
        machine_arn = sfn.create_state_machine(
            name=unique("approval"),
            definition=load_definition(
                arns, timeout_seconds=timeout_seconds, heartbeat_seconds=heartbeat_seconds
            ),
            roleArn=role,
        )["stateMachineArn"]
        machine = Machine(arn=machine_arn, sfn=sfn)
        original = LambdaSimpleBackend.invoke

        def invoke(
            self: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            short = function_name.rsplit(":", 1)[-1].rsplit("-fn-", 1)[0]
            payload = json.loads(body) if body else {}
            machine.calls.append((short, payload))
            handler = handlers.get(short)
            if handler is None:
                return json.dumps(payload).encode()
            try:
                result = handler(payload)
            except Exception as exc:  # surfaced to the ASL as a function error
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        try:
            yield machine
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


__all__ = ["REGION", "Machine", "approval_machine", "load_definition", "wait_task_submitted"]
