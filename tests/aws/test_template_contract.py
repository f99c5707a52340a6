"""infra/template.yaml and the code check each other (no account is needed).

The template is parsed after SAM translation (what CloudFormation receives) and
compared with what the code really does: the topic the edge publishes on, the
boto3 operations each function's code path can call, the resources those
actions can be scoped to, the Cognito flows and groups the dashboard uses, and
the largest FaceEvent the edge may send.
"""

from __future__ import annotations

import functools
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
