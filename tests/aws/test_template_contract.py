"""infra/template.yaml and the code check each other (no account is needed).

The template is parsed after SAM translation (what CloudFormation receives) and
compared with what the code really does: the topic the edge publishes on, the
boto3 operations each function's code path can call, the resources those
actions can be scoped to, the Cognito flows and groups the dashboard uses, and
the largest FaceEvent the edge may send.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from tests.aws.test_template import _load, _translate


@functools.cache
def translated() -> dict[str, Any]:
    return _translate()


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in translated()["Resources"].items() if res["Type"] == kind}


# ------------------------------------------------------------------------- IoT


def _rule_filter() -> str:
    [rule] = _resources("AWS::IoT::TopicRule").values()
    sql = rule["Properties"]["TopicRulePayload"]["Sql"]
    match = re.fullmatch(r"SELECT \* FROM '([^']+)'", sql)
    assert match, sql
    return match.group(1)


def test_the_iot_rule_selects_the_topic_the_edge_publishes_on() -> None:
    from core.aws.iot import TOPIC_FILTER, topic_matches
    from core.aws.iot import topic_for as cloud_topic_for
    from deeplens_lambda.publishers import topic_for as edge_topic_for

    assert _rule_filter() == TOPIC_FILTER
    for store, camera in (("store-1", "cam-entrance"), ("s_2", "deeplens-1")):
        assert topic_matches(_rule_filter(), edge_topic_for(store, camera))
        assert cloud_topic_for(store, camera) == edge_topic_for(store, camera)
    # The matcher itself can say no: the old three-level filter misses the edge's topic.
    assert not topic_matches("storelens/+/faces", edge_topic_for("store-1", "cam-1"))


def test_the_camera_policy_allows_the_edge_topic_and_connecting_as_the_thing() -> None:
    from deeplens_lambda.publishers import topic_for

    policy = _load()["Resources"]["CameraPolicy"]["Properties"]["PolicyDocument"]
    by_action = {s["Action"]: s for s in policy["Statement"]}
    publish = by_action["iot:Publish"]["Resource"]["Fn::Sub"]
    store = _load()["Parameters"]["StoreId"]["Default"]
    arn_prefix = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/"
    assert publish.startswith(arn_prefix)
    # IoT policy resources use '*' as a glob over the rest of the topic.
    glob = publish.removeprefix(arn_prefix).replace("${StoreId}", store)
    pattern = "^" + re.escape(glob).replace(r"\*", ".*") + "$"
    assert re.match(pattern, topic_for(store, "cam-entrance"))
    assert not re.match(pattern, topic_for("another-store", "cam-entrance"))
    connect = by_action["iot:Connect"]
    assert connect["Resource"]["Fn::Sub"].endswith(":client/${!iot:Connection.Thing.ThingName}")
    assert connect["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}


# -------------------------------------------------------- IAM: code vs policies
#
# Which boto3 operations each function performs is *observed*: the real handlers
# run the real flows on moto (tests/aws/test_end_to_end.py's stack) while every
# botocore call is recorded with the function it ran in. The universe of
# operations is *scanned*: an AST pass over core/aws, infra/functions and
# core/auth.py finds every client call; each must be observed in some function
# (or at cold start), be provisioning/dashboard-only, or be listed in
# UNOBSERVED with the functions that may call it. Every observed or listed call
# is then checked against the calling function's role in the translated
# template, action *and* resource (so a callback scoped to a state machine, a
# wrong table or a missing index fails).

import ast  # noqa: E402
import fnmatch  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import pytest  # noqa: E402

from tests.aws import test_end_to_end as e2e  # noqa: E402
from tests.aws.test_template import ROOT  # noqa: E402

PARTITION, REGION, ACCOUNT, STACK = "aws", "eu-west-1", "123456789012", "storelens"
FUNCTIONS = {
    "ingest": "IngestFunction",
    "notify": "NotifyFunction",
    "approval_api": "ApprovalApiFunction",
    "record_decision": "RecordDecisionFunction",
    "expire": "ExpireFunction",
}
COLD_START = "<cold start>"
#: Services the code calls; botocore models give their operations.
SERVICES = (
    "s3",
    "dynamodb",
    "rekognition",
    "stepfunctions",
    "ses",
    "iot-data",
    "iot",
    "cognito-idp",
    "secretsmanager",
)
#: IAM action prefix where it differs from the model's signing name.
IAM_PREFIX = {"iotdata": "iot"}
#: Operations authorised by another action (Service Authorization Reference).
IAM_ACTION = {("s3", "ListObjectsV2"): "s3:ListBucket", ("s3", "HeadObject"): "s3:GetObject"}
#: Operations only provisioning calls (infra/local_stack.py, tests): CloudFormation does this on AWS.
PROVISIONING = {
    ("dynamodb", "CreateTable"),
    ("dynamodb", "DescribeTable"),
    ("dynamodb", "UpdateTimeToLive"),
    ("s3", "CreateBucket"),
    ("s3", "PutPublicAccessBlock"),
    ("s3", "PutBucketEncryption"),
    ("s3", "PutBucketLifecycleConfiguration"),
    ("iot", "DescribeEndpoint"),
    ("rekognition", "DeleteCollection"),
}
#: Operations only the dashboard's sign-in calls (checked against the Cognito client below).
DASHBOARD = {("cognito-idp", "InitiateAuth"), ("cognito-idp", "RespondToAuthChallenge")}
#: Operations no traced flow reaches, with the functions whose code path can call them.
UNOBSERVED: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "HeadObject"): ("record_decision",),  # BlobStore.exists while moving a crop
    # infra/functions/runtime.py at cold start where LINK_SECRET_ARN is set
    # (resources: test_functions_that_read_the_link_key_may_read_exactly_it).
    ("secretsmanager", "GetSecretValue"): ("notify", "approval_api"),
}
#: Operations only an operator makes (dashboard, CLI) with their own credentials:
#: erasure, enrolment, analytics, status; docs/aws.md lists what the dashboard needs.
#: (``dynamodb:Scan`` is observed: the hourly retention sweep scans customers.)
OPERATOR = {
    ("dynamodb", "BatchGetItem"),
    ("rekognition", "DetectFaces"),
    ("rekognition", "SearchFaces"),
    ("rekognition", "ListFaces"),
    ("s3", "ListObjectsV2"),
    ("stepfunctions", "DescribeExecution"),
    ("stepfunctions", "StopExecution"),
    ("iot-data", "Publish"),  # the simulator's cloud-side publisher
    ("cognito-idp", "DescribeUserPoolClient"),  # storelens dashboard-secrets reads the OIDC client's secret
}


@functools.cache
def _models() -> dict[str, Any]:
    import botocore.session

    session = botocore.session.get_session()
    return {svc: session.get_service_model(svc) for svc in SERVICES}


@functools.cache
def _op_index() -> dict[str, list[tuple[str, str]]]:
    """snake_case method name -> [(service, OperationName)] over our services."""
    from botocore import xform_name

    index: dict[str, list[tuple[str, str]]] = {}
    for svc, model in _models().items():
        for op in model.operation_names:
            index.setdefault(xform_name(op), []).append((svc, op))
    return index


def scan_operations() -> dict[tuple[str, str], set[str]]:
    """Every boto3 operation the code can call -> where (file:line)."""
    files = sorted((ROOT / "core" / "aws").glob("*.py")) + sorted(
        (ROOT / "infra" / "functions").rglob("*.py")
    )
    files.append(ROOT / "core" / "auth.py")
    found: dict[tuple[str, str], set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name, target = node.func.attr, ast.unparse(node.func.value)
            literal = (
                node.args[0].value
                if node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                else None
            )
            if name in ("get_paginator", "generate_presigned_url", "_call") and literal:
                name = literal  # the operation is the first argument
            elif name == "get_waiter" and literal == "table_exists":
                name = "describe_table"
            elif not re.search(r"(client|_cognito\(\)|^iot|^ses|^s3|^sfn)$", target):
                continue
            for key in _op_index().get(name, []):
                found.setdefault(key, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@dataclass
class Call:
    function: str
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class Trace:
    calls: list[Call] = field(default_factory=list)
    local: threading.local = field(default_factory=threading.local)

    def current(self) -> str | None:
        return getattr(self.local, "function", None)

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        function = self.current()
        if function is not None:  # the test's own checks are nobody's
            self.calls.append(Call(function, service, operation, dict(params)))

    def within(self, function: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            outer = self.current()
            self.local.function = function
            try:
                return fn(*args, **kwargs)
            finally:
                self.local.function = outer

        return wrapped


def _install(trace: Trace, mp: pytest.MonkeyPatch) -> None:
    """Record every botocore call with the Lambda function (or cold start) it ran in."""
    import importlib

    import botocore.client
    import botocore.signers

    import core.bootstrap

    real_call = botocore.client.BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        trace.record(self.meta.service_model.service_name, operation_name, api_params)
        return real_call(self, operation_name, api_params)

    real_presign = botocore.signers.generate_presigned_url

    def presign(self: Any, ClientMethod: str, Params: Any = None, **kw: Any) -> Any:
        op = self._PY_TO_OP_NAME.get(ClientMethod, ClientMethod)
        trace.record(self.meta.service_model.service_name, op, Params or {})
        return real_presign(self, ClientMethod, Params, **kw)

    mp.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    mp.setattr(botocore.signers, "generate_presigned_url", presign)
    # A Lambda container builds its services inside its first invocation.
    mp.setattr(core.bootstrap, "build_services", trace.within(COLD_START, core.bootstrap.build_services))
    for short in FUNCTIONS:
        module = importlib.import_module(f"infra.functions.{short}.app")
        mp.setattr(module, "handler", trace.within(short, module.handler))


def _waiting_pending(st: e2e.Stack, *, expired: bool) -> str:
    from datetime import timedelta

    from core.models import PendingIdentity, PendingKind, PendingStatus, new_id, utcnow
    from tests.aws.sfn_harness import wait_task_submitted

    svc, now = st.services, utcnow()
    pending = PendingIdentity(
        pending_id=new_id("pid"),
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=now - timedelta(days=40),
        last_seen_at=now,
        expires_at=now - timedelta(hours=1) if expired else now + timedelta(days=30),
        store_id="store-1",
    )
    svc.repos.pending.add(pending)
    svc.approvals.request(pending)
    wait_task_submitted(st.machine.sfn, svc.workflow.execution_arn(pending.pending_id))  # type: ignore[attr-defined]
    e2e._eventually(lambda: bool(svc.workflow._tokens.get(pending.pending_id)))  # type: ignore[attr-defined]
    return pending.pending_id


def _sweep_expires_a_waiting_identity(st: e2e.Stack) -> None:
    from infra.functions.expire import app as expire_app

    pending_id = _waiting_pending(st, expired=True)
    report = expire_app.handler({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert pending_id in report["expired"]


def _ingest_unknown(st: e2e.Stack) -> tuple[str, str]:
    """The ingest function meets an unknown face: (pending id, its index face id)."""
    import uuid

    from core.aws.rekognition import similarity_to_rekognition
    from core.recognition import EVIDENCE_MARGIN, SEARCH_DEPTH
    from infra.functions.ingest import app as ingest_app

    crop, settings = e2e.jpeg(), st.services.settings
    # An event's crops are searched below the policy's lowest threshold (core.recognition).
    floor = min(settings.review_threshold, settings.cluster_threshold) - EVIDENCE_MARGIN
    box = {"Width": 0.6, "Height": 0.7, "Left": 0.2, "Top": 0.1}
    st.stub.add_response(
        "search_faces_by_image",
        {"FaceMatches": [], "SearchedFaceConfidence": 99.5, "SearchedFaceBoundingBox": box},
        {
            "CollectionId": e2e.COLLECTION,
            "Image": {"Bytes": crop},
            "MaxFaces": SEARCH_DEPTH,
            "FaceMatchThreshold": similarity_to_rekognition(floor),
            "QualityFilter": "NONE",
        },
    )
    face = str(uuid.uuid4())
    st.stub.add_response(
        "index_faces",
        {"FaceRecords": [e2e._face_record(face, "x")], "UnindexedFaces": []},
        {
            "CollectionId": e2e.COLLECTION,
            "Image": {"Bytes": crop},
            "ExternalImageId": e2e._StartsWith("pid_"),
            "DetectionAttributes": ["DEFAULT"],
            "MaxFaces": 1,
            "QualityFilter": "AUTO",
        },
    )
    result = ingest_app.handler(e2e.face_event(crop))
    assert result["outcome"] == "pending", result
    return str(result["pending_id"]), face


def _timeout_step_expires(st: e2e.Stack) -> None:
    from infra.functions.expire import app as expire_app
    from tests.aws.sfn_harness import wait_task_submitted

    pending_id, face = _ingest_unknown(st)
    wait_task_submitted(st.machine.sfn, st.services.workflow.execution_arn(pending_id))  # type: ignore[attr-defined]
    st.stub.add_response(
        "delete_faces", {"DeletedFaces": [face]}, {"CollectionId": e2e.COLLECTION, "FaceIds": [face]}
    )
    expire_app.handler({"pending_id": pending_id, "reason": "timeout"})
    assert st.objects() == []  # the crop is gone
    assert str(st.services.repos.pending.get(pending_id).status) in ("expired", "PendingStatus.EXPIRED")


def _sweep_retires_records_and_rolls_up(st: e2e.Stack) -> None:
    """The hourly sweep deletes a customer not seen for years and rolls up old sightings."""
    from datetime import timedelta

    from core.models import AnonymousSighting, Customer, Transaction, Visit, new_id, utcnow
    from infra.functions.expire import app as expire_app

    svc, old = st.services, utcnow() - timedelta(days=3000)
    gone = Customer(new_id("cus"), "Long Gone", consent=True, consent_at=old, created_at=old, updated_at=old)
    svc.repos.customers.add(gone)
    svc.repos.visits.add(Visit(new_id("vis"), gone.customer_id, "store-1", "cam-1", "entrance", old, old))
    svc.repos.transactions.add(Transaction(new_id("txn"), "store-1", old, 1250, customer_id=gone.customer_id))
    svc.repos.anonymous.add(AnonymousSighting("anon_old", "store-1", "cam-1", "entrance", old, old))
    expire_app.handler({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert svc.repos.customers.count() == 0
    assert [s.is_rollup for s in svc.repos.anonymous.between(old - timedelta(days=1), utcnow())] == [True]


SCENARIOS = {
    "approve by mail link": e2e.test_unknown_face_is_approved_by_mail_link_into_a_customer,
    "bad event": lambda st: e2e.test_bad_events_are_dead_lettered_without_partial_writes(
        st, lambda d: {**d, "zone": 5}, "EventSchemaError"
    ),
    "hourly heartbeat": e2e.test_hourly_sweep_heartbeats_waiting_approvals,
    "sweep expires": _sweep_expires_a_waiting_identity,
    "timeout step": _timeout_step_expires,
    "sweep retires records": _sweep_retires_records_and_rolls_up,
}


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trace]:
    """Run the real flows once, recording which function made which call."""
    recorded = Trace()
    with pytest.MonkeyPatch.context() as mp:
        _install(recorded, mp)
        for i, scenario in enumerate(SCENARIOS.values()):
            with e2e.make_stack(tmp_path_factory.mktemp(f"flow{i}")) as st:
                scenario(st)
    yield recorded


# ------------------------------------------------------- policies, resolved


def _physical(logical: str, res: dict[str, Any]) -> str:
    """The name CloudFormation would give ``Ref logical`` with the default parameters."""
    props = res.get("Properties", {})
    kind = res.get("Type")
    if kind == "AWS::DynamoDB::Table":
        return str(_resolve(props["TableName"]))
    if kind == "AWS::StepFunctions::StateMachine":
        return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{_resolve(props['StateMachineName'])}"
    if kind == "AWS::SecretsManager::Secret":
        return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{logical}-AbCdEf"
    return logical.lower()  # buckets, pools, queues, keys: any stable name


def _get_att(logical: str, attr: str) -> str:
    res = translated()["Resources"][logical]
    name = _physical(logical, res)
    arns = {
        "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
        "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::Cognito::UserPool": f"arn:{PARTITION}:cognito-idp:{REGION}:{ACCOUNT}:userpool/{name}",
        "AWS::KMS::Key": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}",
        "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
    }
    assert attr == "Arn" and res["Type"] in arns, (logical, attr)
    return arns[res["Type"]]


def _resolve(value: Any, local: dict[str, Any] | None = None) -> Any:
    """Evaluate the intrinsics IAM policies use (Ref, Sub, GetAtt, If, Join)."""
    params = {k: v.get("Default") for k, v in translated()["Parameters"].items()}
    pseudo = {
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }
    if isinstance(value, list):
        return [_resolve(v, local) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if local and name in local:
            return local[name]
        if name in pseudo:
            return pseudo[name]
        if name in params:
            return params[name]
        return _physical(name, translated()["Resources"][name])
    if "Fn::GetAtt" in value:
        logical, attr = (
            value["Fn::GetAtt"] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")
        )
        return _get_att(logical, attr)
    if "Fn::Sub" in value:
        arg = value["Fn::Sub"]
        text, extra = (
            (arg, {}) if isinstance(arg, str) else (arg[0], {k: _resolve(v) for k, v in arg[1].items()})
        )

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return _get_att(logical, attr)
            return str(_resolve({"Ref": name}))

        return re.sub(r"\$\{([^}]+)\}", sub, text)
    if "Fn::If" in value:
        cond, yes, no = value["Fn::If"]
        chosen = no if cond == "HasPublicUrl" else yes  # PublicUrl defaults to ""
        return _resolve(chosen, local)
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(str(p) for p in _resolve(parts, local))
    return {k: _resolve(v, local) for k, v in value.items()}


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]


@functools.cache
def role_statements(function_logical: str) -> list[Statement]:
    """The Allow statements of a function's execution role (inline policies)."""
    role = translated()["Resources"][f"{function_logical}Role"]["Properties"]
    out = []
    for policy in role.get("Policies", []):
        for stmt in policy["PolicyDocument"]["Statement"]:
            assert stmt["Effect"] == "Allow", stmt
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            res = _resolve(stmt["Resource"])
            out.append(Statement(tuple(actions), tuple(res if isinstance(res, list) else [res])))
    return out


def iam_action(service: str, operation: str) -> str:
    if (service, operation) in IAM_ACTION:
        return IAM_ACTION[(service, operation)]
    signing = _models()[service].signing_name
    return f"{IAM_PREFIX.get(signing, signing)}:{operation}"


def _table_name(name: str) -> str:
    """A traced table name (random test prefix) as the template names it."""
    return f"{_resolve({'Ref': 'TablePrefix'})}-{name.rsplit('-', 1)[1]}"


def request_resources(call: Call) -> list[str]:
    """The ARNs IAM authorises ``call`` against ("*": the action has no resource type)."""
    p, svc, op = call.params, call.service, call.operation
    arn = f"arn:{PARTITION}:{{}}:{REGION}:{ACCOUNT}:{{}}"
    if svc == "dynamodb":
        names = list(p["RequestItems"]) if "RequestItems" in p else [p["TableName"]]
        out = [arn.format("dynamodb", f"table/{_table_name(n)}") for n in names]
        return [f"{a}/index/{p['IndexName']}" for a in out] if p.get("IndexName") else out
    if svc == "s3":
        bucket = _physical("CropsBucket", {})
        return [f"arn:{PARTITION}:s3:::{bucket}" + (f"/{p['Key']}" if "Key" in p else "")]
    if svc == "rekognition":
        coll = p.get("CollectionId")
        return (
            [arn.format("rekognition", f"collection/{_resolve({'Ref': 'CollectionId'})}")] if coll else ["*"]
        )
    if svc == "stepfunctions":
        machine = f"{STACK}-approval"
        if op == "StartExecution":
            return [arn.format("states", f"stateMachine:{machine}")]
        if "executionArn" in p:
            return [arn.format("states", f"execution:{machine}:{p['executionArn'].rsplit(':', 1)[1]}")]
        return ["*"]  # SendTask*: authorised on the task token, no resource type
    if svc == "ses":
        return [arn.format("ses", f"identity/{p.get('Source') or 'sender@example.com'}")]
    if svc == "secretsmanager":
        return [_physical("LinkSecret", {"Type": "AWS::SecretsManager::Secret"})]
    if svc == "kms":
        return [_get_att("CropsKey", "Arn")]
    raise AssertionError(f"no resource rule for {svc}:{op}")


def allows(statements: list[Statement], action: str, resources: list[str]) -> bool:
    def one(resource: str) -> bool:
        return any(
            any(fnmatch.fnmatchcase(action, a) for a in s.actions)
            and any(r == "*" if resource == "*" else fnmatch.fnmatchcase(resource, r) for r in s.resources)
            for s in statements
        )

    return all(one(r) for r in resources)


def test_every_call_a_function_makes_is_allowed_by_its_role(trace: Trace) -> None:
    denied = []
    cold = [c for c in trace.calls if c.function == COLD_START]
    for short, logical in FUNCTIONS.items():
        statements = role_statements(logical)
        mine = [c for c in trace.calls if c.function == short] + cold
        for call in mine:
            action, resources = iam_action(call.service, call.operation), request_resources(call)
            if not allows(statements, action, resources):
                denied.append(f"{logical}: {action} on {resources}")
    assert not denied, "\n".join(sorted(set(denied)))


def test_every_operation_in_the_code_is_traced_or_accounted_for(trace: Trace) -> None:
    scanned = scan_operations()
    observed = {(c.service, c.operation) for c in trace.calls}
    accounted = observed | PROVISIONING | DASHBOARD | set(UNOBSERVED) | set(OPERATOR)
    missing = {op: sorted(where) for op, where in scanned.items() if op not in accounted}
    assert not missing, f"operations no flow exercises and no list accounts for: {missing}"
    # The lists cannot go stale: each entry is in the code and not already observed.
    for listed in (PROVISIONING, DASHBOARD, set(UNOBSERVED), set(OPERATOR)):
        assert listed <= set(scanned), listed - set(scanned)
        assert not (listed & observed), listed & observed


def test_calls_no_flow_reaches_are_allowed_where_the_code_can_make_them() -> None:
    for (service, operation), functions in UNOBSERVED.items():
        for short in functions:
            statements = role_statements(FUNCTIONS[short])
            action = iam_action(service, operation)
            assert any(any(fnmatch.fnmatchcase(action, a) for a in s.actions) for s in statements), (
                short,
                action,
            )


def test_the_traced_flows_ran_in_every_function(trace: Trace) -> None:
    assert {c.function for c in trace.calls} == {*FUNCTIONS, COLD_START}


# --------------------------------------------------------------------- Cognito


def test_the_app_client_allows_the_flows_the_dashboard_uses() -> None:
    from core.aws.cognito import PASSWORD_AUTH_FLOW, REQUIRED_EXPLICIT_AUTH_FLOWS

    client = _resources("AWS::Cognito::UserPoolClient")["ApproverPoolClient"]
    flows = set(client["Properties"]["ExplicitAuthFlows"])
    assert set(REQUIRED_EXPLICIT_AUTH_FLOWS) <= flows
    assert f"ALLOW_{PASSWORD_AUTH_FLOW}" in flows
    # The code really uses that flow (not only the constant).
    source = (ROOT / "core" / "aws" / "cognito.py").read_text()
    assert "AuthFlow=PASSWORD_AUTH_FLOW" in source
    assert client["Properties"]["GenerateSecret"] is False  # InitiateAuth sends no SECRET_HASH


def test_the_groups_the_dashboard_reads_exist() -> None:
    from core.auth import ADMIN_GROUP, CognitoAuthenticator, user_from_oidc_claims

    groups = {g["Properties"]["GroupName"] for g in _resources("AWS::Cognito::UserPoolGroup").values()}
    assert CognitoAuthenticator.ADMIN_GROUP in groups and ADMIN_GROUP in groups
    # st.login's identity: a member of the template's group is an admin.
    [group] = groups
    assert user_from_oidc_claims({"email": "a@example.com", "cognito:groups": [group]}).role == "admin"


def test_the_oidc_client_is_what_st_login_and_the_secrets_generator_expect() -> None:
    """DashboardClient: confidential, code grant, the scopes and Streamlit's /oauth2callback."""
    from core.aws import dashboard_auth

    client = _resources("AWS::Cognito::UserPoolClient")["DashboardClient"]["Properties"]
    assert client["GenerateSecret"] is True  # st.login needs a client_secret
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == set(dashboard_auth.SCOPES)
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["UserPoolId"] == {"Ref": "ApproverPool"}
    [callback] = client["CallbackURLs"]
    condition, with_url, without = callback["Fn::If"]
    assert condition == "HasPublicUrl"
    assert with_url == {"Fn::Sub": "${PublicUrl}" + dashboard_auth.CALLBACK_PATH}
    assert without == dashboard_auth.callback_url("http://localhost:8501")
    # st.logout returns through the same URL (its post_logout_redirect_uri).
    assert client["LogoutURLs"] == client["CallbackURLs"]
    # The outputs storelens dashboard-secrets reads.
    outputs = _load()["Outputs"]
    assert outputs[dashboard_auth.POOL_OUTPUT]["Value"] == {"Ref": "ApproverPool"}
    assert outputs[dashboard_auth.CLIENT_OUTPUT]["Value"] == {"Ref": "DashboardClient"}
    # Streamlit's callback route is the one the template registers.
    from streamlit.web.server.starlette import starlette_auth_routes

    assert "/" + starlette_auth_routes._ROUTE_OAUTH_CALLBACK == dashboard_auth.CALLBACK_PATH


def test_the_iot_rule_has_an_error_action_that_may_deliver() -> None:
    [rule] = _resources("AWS::IoT::TopicRule").values()
    payload = rule["Properties"]["TopicRulePayload"]
    [action] = payload["Actions"]
    assert action["Lambda"]["FunctionArn"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    sqs = payload["ErrorAction"]["Sqs"]
    role = translated()["Resources"][sqs["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    [stmt] = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert stmt["Action"] == "sqs:SendMessage"
    assert stmt["Resource"] == {"Fn::GetAtt": [sqs["QueueUrl"]["Ref"], "Arn"]}
    permissions = [
        r["Properties"]
        for r in _resources("AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "iot.amazonaws.com"
    ]
    assert [p["FunctionName"] for p in permissions] == [{"Ref": "IngestFunction"}]


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = {
        g["Properties"]["LogGroupName"]["Fn::Sub"]: g["Properties"]
        for g in _resources("AWS::Logs::LogGroup").values()
    }
    for logical in FUNCTIONS.values():
        assert groups[f"/aws/lambda/${{{logical}}}"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ------------------------------------------------------------ one pending TTL


def test_one_setting_bounds_the_wait_the_dashboard_and_the_bucket() -> None:
    """PendingTtlDays -> STORELENS_PENDING_TTL_DAYS (expires_at, shown by the dashboard)
    -> the execution's wait_seconds (ASL TimeoutSecondsPath); and -> the S3 lifecycle."""
    import json as _json
    from datetime import timedelta

    from core.aws.stepfunctions import wait_seconds
    from core.models import PendingIdentity, PendingKind, PendingStatus, utcnow
    from core.settings import Settings

    template = _load()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["STORELENS_PENDING_TTL_DAYS"] == {"Ref": "PendingTtlDays"}
    rules = template["Resources"]["CropsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [pending_rule] = [r for r in rules if r.get("Prefix") == "pending/"]
    assert pending_rule["ExpirationInDays"] == {"Ref": "PendingTtlDays"}
    wait = _json.loads((ROOT / "infra" / "statemachine" / "approval.asl.json").read_text())["States"][
        "AwaitDecision"
    ]
    assert wait["TimeoutSecondsPath"] == "$.wait_seconds"

    days = int(template["Parameters"]["PendingTtlDays"]["Default"])
    settings = Settings.from_env({"STORELENS_PENDING_TTL_DAYS": str(days)})
    now = utcnow()
    pending = PendingIdentity(
        pending_id="pid_x",
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=settings.pending_ttl_days),
        store_id="s",
    )
    assert wait_seconds(pending, now) == days * 86400
    # Longer than the heartbeat interval, so heartbeats (hourly sweep) keep it alive.
    assert wait_seconds(pending, now) > wait["HeartbeatSeconds"]


# --------------------------------------------------------------- link secret


def test_functions_that_read_the_link_key_may_read_exactly_it() -> None:
    from core.aws.secrets import SECRET_ARN_ENV

    template = translated()
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    for function in functions:  # never the key itself, nor a dynamic reference to it
        env = json.dumps(function["Properties"].get("Environment", {}))
        assert "STORELENS_SECRET_KEY" not in env and "resolve:secretsmanager" not in env
    readers = []
    for short, logical in FUNCTIONS.items():
        env = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
        if SECRET_ARN_ENV not in env:
            continue
        readers.append(short)
        secret = _resolve(env[SECRET_ARN_ENV])
        call = Call(short, "secretsmanager", "GetSecretValue", {"SecretId": secret})
        assert allows(role_statements(logical), "secretsmanager:GetSecretValue", request_resources(call)), (
            short
        )
    assert sorted(readers) == sorted(UNOBSERVED[("secretsmanager", "GetSecretValue")])


def test_no_function_may_delete_or_rewrite_audit_rows_nor_change_bucket_settings() -> None:
    audit = _resolve({"Fn::Sub": "arn:aws:dynamodb:eu-west-1:123456789012:table/${AuditTable}"})
    bucket = _get_att("CropsBucket", "Arn")
    for logical in FUNCTIONS.values():
        statements = role_statements(logical)
        for action in ("dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"):
            assert not allows(statements, action, [audit]), (logical, action)
        for action in ("s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:PutObjectAcl"):
            assert not allows(statements, action, [bucket]) and not allows(
                statements, action, [bucket + "/k"]
            )
    ingest = role_statements("IngestFunction")
    for table in ("EventsTable", "FacesTable", "PendingTable", "DeadLettersTable"):
        arn = _resolve({"Fn::Sub": f"arn:aws:dynamodb:eu-west-1:123456789012:table/${{{table}}}"})
        assert not allows(ingest, "dynamodb:DeleteItem", [arn]), table


def test_crops_are_encrypted_with_the_stack_key_and_users_of_crops_may_use_it() -> None:
    """S3 calls KMS on the caller's behalf (SSE-KMS): readers need Decrypt, writers GenerateDataKey."""
    bucket = translated()["Resources"]["CropsBucket"]["Properties"]
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["CropsKey", "Arn"]},
    }
    key = _get_att("CropsKey", "Arn")
    objects = [_get_att("CropsBucket", "Arn") + "/crops/x.jpg"]
    for logical in FUNCTIONS.values():
        statements = role_statements(logical)
        if allows(statements, "s3:GetObject", objects):
            assert allows(statements, "kms:Decrypt", [key]), logical
        if allows(statements, "s3:PutObject", objects):
            assert allows(statements, "kms:GenerateDataKey", [key]), logical
    assert translated()["Resources"]["CropsKey"]["Properties"]["EnableKeyRotation"] is True


def test_edge_agents_may_read_exactly_the_gallery_and_the_sweep_may_rewrite_it() -> None:
    from core.gallery import GALLERY_KEY

    policy = translated()["Resources"]["EdgeGalleryReadPolicy"]["Properties"]["PolicyDocument"]
    statements = [
        Statement(
            tuple(s["Action"] if isinstance(s["Action"], list) else [s["Action"]]),
            tuple([_resolve(s["Resource"])]),
        )
        for s in policy["Statement"]
    ]
    gallery = f"arn:{PARTITION}:s3:::{_physical('CropsBucket', {})}/{GALLERY_KEY}"
    assert allows(statements, "s3:GetObject", [gallery])
    assert allows(statements, "kms:Decrypt", [_get_att("CropsKey", "Arn")])
    assert not allows(statements, "s3:GetObject", [gallery.replace(GALLERY_KEY, "crops/2026/x.jpg")])
    assert not allows(statements, "s3:PutObject", [gallery])
    sweep = role_statements("ExpireFunction")
    assert allows(sweep, "s3:PutObject", [gallery]) and allows(
        sweep, "kms:GenerateDataKey", [_get_att("CropsKey", "Arn")]
    )
    assert not allows(sweep, "s3:PutObject", [gallery.replace(GALLERY_KEY, "crops/2026/x.jpg")])
