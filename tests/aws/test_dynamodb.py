"""DynamoDB specifics beyond the Repositories contract: TTL, conditional writes, GSIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.aws.dynamodb import TABLES, TTL_GRACE, DynamoDbRepositories
from core.models import FaceStatus, PendingStatus
from tests.aws.moto_support import client, moto, unique
from tests.contract.test_repositories import T0, face, pending, visit


def _raw(repos: DynamoDbRepositories, table: str, key: str, value: str) -> dict[str, Any]:
    item = repos.client.get_item(TableName=repos.table_name(table), Key={key: {"S": value}})["Item"]
    return dict(item)


def test_unapproved_items_carry_ttl_and_approval_removes_it() -> None:
    with moto():
        repos = DynamoDbRepositories(
            prefix=unique("sl"), client=client("dynamodb"), pending_ttl=timedelta(days=30)
        )
        repos.create_tables()
        p = pending()
        f = face(pending_id=p.pending_id)
        repos.pending.add(p)
        repos.faces.add(f)
        ttl = int(_raw(repos, "pending", "pending_id", p.pending_id)["ttl"]["N"])
        assert ttl == int((p.expires_at + TTL_GRACE).timestamp())
        assert int(_raw(repos, "faces", "face_id", f.face_id)["ttl"]["N"]) == int(
            (f.captured_at + timedelta(days=30) + TTL_GRACE).timestamp()
        )
        p.status, p.customer_id = PendingStatus.APPROVED, "cus_1"
        repos.pending.update(p)
        f.status, f.pending_id, f.customer_id = FaceStatus.CUSTOMER, None, "cus_1"
        repos.faces.update(f)
        assert "ttl" not in _raw(repos, "pending", "pending_id", p.pending_id)
        assert "ttl" not in _raw(repos, "faces", "face_id", f.face_id)
        ddb = repos.client
        for name, (_key, _idx, ttl_attr) in TABLES.items():
            desc = ddb.describe_time_to_live(TableName=repos.table_name(name))["TimeToLiveDescription"]
            if ttl_attr:
                assert desc["TimeToLiveStatus"] == "ENABLED" and desc["AttributeName"] == ttl_attr


def test_visits_have_day_partition_for_the_by_day_index() -> None:
    with moto():
        repos = DynamoDbRepositories(prefix=unique("sl"), client=client("dynamodb"))
        repos.create_tables()
        v = visit("cus_1", T0)
        repos.visits.add(v)
        item = _raw(repos, "visits", "visit_id", v.visit_id)
        assert item["day"] == {"S": "2026-11-02"}
        indexes = repos.client.describe_table(TableName=repos.table_name("visits"))["Table"][
            "GlobalSecondaryIndexes"
        ]
        assert {i["IndexName"] for i in indexes} == {"by_customer", "by_day"}


def test_tables_are_created_once_and_no_client_at_construction() -> None:
    lazy = DynamoDbRepositories(prefix="x")
    assert lazy._client is None
    with moto():
        repos = DynamoDbRepositories(prefix=unique("sl"), client=client("dynamodb"))
        repos.create_tables()
        repos.create_tables()
        assert set(repos.table_counts()) == set(TABLES)
