"""infra/template.yaml: cfn-lint before and after SAM translation, and consistency
with the code (tables vs core/aws/dynamodb.py, handlers, ASL substitutions)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
ASL = ROOT / "infra" / "statemachine" / "approval.asl.json"


def _load() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(TEMPLATE.read_text()))


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    """Run the cfn-lint CLI installed next to this interpreter (as CI would)."""
    binary = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(binary)] if binary.exists() else ["cfn-lint"]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=300, cwd=path.parent)


def test_cfn_lint_passes_on_the_sam_template() -> None:
    proc = _cfn_lint(TEMPLATE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` produces: code in S3, the ASL inlined as a definition."""
    out = copy.deepcopy(template)
    out["Globals"]["Function"]["CodeUri"] = "s3://storelens-artifacts/code.zip"
    out["Resources"]["DependenciesLayer"]["Properties"]["ContentUri"] = "s3://storelens-artifacts/deps.zip"
    machine = out["Resources"]["ApprovalStateMachine"]["Properties"]
    machine.pop("DefinitionUri")
    machine["Definition"] = json.loads(ASL.read_text())
    return out


def _translate() -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    params = {
        "SesSender": "storelens@example.com",
        "ApproverEmails": "boss@example.com",
        "CognitoDomainPrefix": "storelens-test",
    }
    import os

    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "eu-west-1"  # pseudo parameters need a region
    try:
        return dict(transform(_packaged(_load()), params, NoManagedPolicies()))
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def test_cfn_lint_passes_on_the_translated_template(tmp_path: Path) -> None:
    out = tmp_path / "translated.json"
    out.write_text(json.dumps(_translate(), indent=1, default=str))
    proc = _cfn_lint(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_translation_yields_the_expected_resources() -> None:
    resources = _translate()["Resources"]
    kinds: dict[str, int] = {}
    for res in resources.values():
        kinds[res["Type"]] = kinds.get(res["Type"], 0) + 1
    assert kinds["AWS::Lambda::Function"] == 5
    assert kinds["AWS::Lambda::LayerVersion"] == 1  # one copy of the dependencies
    assert kinds["AWS::DynamoDB::Table"] == 11
    assert kinds["AWS::StepFunctions::StateMachine"] == 1
    assert kinds["AWS::IoT::TopicRule"] == 1
    assert kinds["AWS::Cognito::UserPool"] == 1
    assert kinds["AWS::ApiGateway::RestApi"] == 1
    rule = next(r for r in resources.values() if r["Type"] == "AWS::IoT::TopicRule")
    assert rule["Properties"]["TopicRulePayload"]["Sql"] == "SELECT * FROM 'storelens/+/+/faces'"
    machine = next(r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    assert set(machine["Properties"]["DefinitionSubstitutions"]) == set(
        re.findall(r"\$\{(\w+)\}", ASL.read_text())
    )
    # Least privilege: no function may use a wildcard action.
    for name, res in resources.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for stmt in policy["PolicyDocument"]["Statement"]:
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)


def test_tables_match_the_dynamodb_adapter() -> None:
    from core.aws.dynamodb import TABLES

    resources = _load()["Resources"]
    tables = {
        r["Properties"]["TableName"]["Fn::Sub"].split("}-", 1)[1]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    assert set(tables) == set(TABLES)
    for name, (key, indexes, ttl) in TABLES.items():
        props = tables[name]
        assert props["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}], name
        got = {
            g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]]
            for g in props.get("GlobalSecondaryIndexes", [])
        }
        want = {n: [p] + ([s] if s else []) for n, p, s in indexes}
        assert got == want, name
        spec = props.get("TimeToLiveSpecification")
        assert (spec["AttributeName"] if spec else None) == ttl, name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


@pytest.mark.parametrize(
    "function",
    ["IngestFunction", "NotifyFunction", "ApprovalApiFunction", "RecordDecisionFunction", "ExpireFunction"],
)
def test_every_handler_exists_and_imports_without_side_effects(function: str) -> None:
    import importlib

    handler = _load()["Resources"][function]["Properties"]["Handler"]
    module_path, attr = handler.rsplit(".", 1)
    assert (ROOT / f"{module_path}.py").is_file()
    module = importlib.import_module(module_path.replace("/", "."))
    assert callable(getattr(module, attr))


def test_build_puts_code_and_dependencies_where_the_template_expects_them(tmp_path: Path) -> None:
    from infra.build_lambda import build

    out = build(tmp_path / ".build")
    template = _load()
    code_uri = template["Globals"]["Function"]["CodeUri"].rstrip("/").removeprefix(".build/")
    layer = template["Resources"]["DependenciesLayer"]
    deps_uri = layer["Properties"]["ContentUri"].rstrip("/").removeprefix(".build/")
    assert (out / code_uri / "infra" / "functions" / "ingest" / "app.py").is_file()
    assert not (out / code_uri / "core" / "local").exists()
    # No requirements next to the code: sam build must not install packages five times.
    assert not list((out / code_uri).glob("requirements*.txt"))
    reqs = (out / deps_uri / "requirements.txt").read_text()
    assert "boto3" in reqs and "pyjwt" in reqs
    assert layer["Metadata"]["BuildMethod"] == template["Globals"]["Function"]["Runtime"]
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "DependenciesLayer"}]
