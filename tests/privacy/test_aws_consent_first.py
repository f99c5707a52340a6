"""Consent-first mode on the AWS backend: S3 and DynamoDB in moto, Rekognition through
the behavioural fake at botocore's edge (moto has no collections).

An unknown face leaves nothing in the bucket or the tables; a consented customer
gets a visit; the anonymous-sightings table behaves like the SQLite one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.bootstrap import Services, build_services
from core.consent import CONSENT_FIRST
from core.models import AnonymousSighting, IngestOutcome
from core.settings import Settings
from tests.aws.moto_support import REGION, client, moto, unique
from tests.privacy.conftest import enrol
from tests.support.events import make_event
from tests.support.photos import photo_bytes


@pytest.fixture
def aws_services(tmp_path: Path) -> Iterator[tuple[Services, Any, str]]:
    import boto3

    from core.aws.rekognition import RekognitionFaceIndex
    from core.local.engine import get_engine
    from tests.contract.rekognition_fake import FakeRekognition

    with moto():
        s3, ddb = client("s3"), client("dynamodb")
        bucket, prefix = unique("crops"), unique("sl")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        rekognition = boto3.client(
            "rekognition", region_name=REGION, aws_access_key_id="fake", aws_secret_access_key="fake"
        )
        index = RekognitionFaceIndex(client=FakeRekognition(get_engine()).attach(rekognition))
        settings = Settings.from_env(
            {},
            backend="aws",
            data_dir=tmp_path / "data",
            secret_key="privacy-test-secret",
            aws_region=REGION,
            s3_bucket=bucket,
            dynamodb_table_prefix=prefix,
            # Never started: consent-first opens no pending identities.
            state_machine_arn=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
            privacy_mode=CONSENT_FIRST,
        )
        svc = build_services(
            settings, s3=s3, dynamodb=ddb, face_index=index, stepfunctions=client("stepfunctions")
        )
        svc.repos.create_tables()  # type: ignore[attr-defined]
        yield svc, s3, bucket


def _everything_stored(svc: Services, s3: Any, bucket: str) -> bytes:
    """Every object in the bucket and every item of every table, as one byte string."""
    blob = b""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            blob += obj["Key"].encode() + s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    ddb = svc.repos.client  # type: ignore[attr-defined]
    for name in svc.repos.table_counts():  # type: ignore[attr-defined]
        table = svc.repos.table_name(name)  # type: ignore[attr-defined]
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            blob += json.dumps(page["Items"], default=str).encode()
    return blob


def test_unknown_face_leaves_nothing_in_buckets_or_tables(aws_services: tuple[Services, Any, str]) -> None:
    svc, s3, bucket = aws_services
    barack = enrol(svc, "Barack", "obama")
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    event = make_event(photo_bytes("biden"), captured_at=t0, zone="tills")
    result = svc.ingest.ingest(event)
    assert result.outcome is IngestOutcome.ANONYMOUS

    stored = _everything_stored(svc, s3, bucket)
    assert event.crop_jpeg not in stored
    assert base64.b64encode(event.crop_jpeg)[:200] not in stored
    assert b"pid_" not in stored  # no pending identity anywhere
    assert svc.repos.pending.list(None) == []
    faces = svc.faces.list_faces(svc.settings.collection_id)
    assert {f.external_id for f in faces} == {barack.customer_id}
    (sighting,) = svc.repos.anonymous.between(t0, t0 + timedelta(minutes=1))
    assert (sighting.zone, sighting.camera_id) == ("tills", event.camera_id)

    # The consented customer is recognised and gets a visit.
    visit = svc.ingest.ingest(make_event(photo_bytes("obama2"), captured_at=t0 + timedelta(minutes=2)))
    assert visit.outcome is IngestOutcome.VISIT and visit.customer_id == barack.customer_id
    assert len(svc.repos.visits.by_customer(barack.customer_id)) == 1


@pytest.mark.parametrize("backend", ["local", "aws"])
def test_anonymous_sightings_repository(backend: str, tmp_path: Path) -> None:
    t0 = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
    rows = [
        AnonymousSighting(
            f"anon_{i}",
            "store-1",
            "cam-1",
            "entrance",
            t0 + timedelta(minutes=i),
            t0 + timedelta(minutes=i, seconds=30),
        )
        for i in range(3)
    ]

    def check(repos: Any) -> None:
        assert [repos.anonymous.add(r) for r in rows] == [True, True, True]
        assert repos.anonymous.add(rows[0]) is False  # idempotent
        # Crosses midnight: the DynamoDB by_day index is queried for both days.
        got = repos.anonymous.between(t0, t0 + timedelta(minutes=2))
        assert got == rows[:2]
        assert repos.anonymous.between(t0 + timedelta(hours=1), t0 + timedelta(hours=2)) == []

    if backend == "local":
        from core.local.sqlite import SqliteRepositories

        repos = SqliteRepositories(tmp_path / "storelens.db")
        try:
            check(repos)
        finally:
            repos.close()
        return
    from core.aws.dynamodb import DynamoDbRepositories

    with moto():
        repos = DynamoDbRepositories(prefix=unique("sl"), client=client("dynamodb"))
        repos.create_tables()
        check(repos)


def test_retention_sweep_on_aws_empties_bucket_and_faces_table(
    aws_services: tuple[Services, Any, str],
) -> None:
    from core.models import utcnow

    svc, s3, bucket = aws_services
    barack = enrol(svc, "Barack", "obama")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 1
    later = utcnow() + timedelta(days=svc.settings.customer_retention_days + 1)
    report = svc.privacy.purge(now=later)
    assert report.retired == [barack.customer_id]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert svc.repos.table_counts()["faces"] == 0  # type: ignore[attr-defined]
    assert svc.faces.list_faces(svc.settings.collection_id) == []
    assert svc.repos.customers.get(barack.customer_id).name == "Barack"
