"""The edge gallery on AWS: the backend rewrites one S3 object of consented templates on
enrolment, erasure, withdrawal and retirement; an edge reads it with its own S3 client.

S3 and DynamoDB in moto; Rekognition through the behavioural fake (it keeps no vectors,
so the backend embeds the customers' stored photos with the local ONNX engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.bootstrap import Services, build_services
from core.consent import CONSENT_FIRST
from core.enrolment import consent_service
from core.gallery import GALLERY_KEY, BlobGallery, decode_templates
from core.local.faces import LocalFaceIndex
from core.models import BoundingBox, FaceCrop
from core.settings import Settings
from deeplens_lambda.consent_gate import UnmatchedGate
from tests.aws.moto_support import REGION, client, moto, unique
from tests.privacy.conftest import enrol
from tests.support.photos import photo_bytes


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[tuple[Services, Any, str]]:
    import boto3

    from core.aws.rekognition import RekognitionFaceIndex
    from core.local.engine import get_engine
    from tests.contract.rekognition_fake import FakeRekognition

    with moto():
        s3, ddb = client("s3"), client("dynamodb")
        bucket = unique("crops")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        rekognition = boto3.client(
            "rekognition", region_name=REGION, aws_access_key_id="fake", aws_secret_access_key="fake"
        )
        index = RekognitionFaceIndex(client=FakeRekognition(get_engine()).attach(rekognition))
        settings = Settings.from_env(
            {},
            backend="aws",
            data_dir=tmp_path / "data",
            secret_key="gallery-test-secret",
            aws_region=REGION,
            s3_bucket=bucket,
            dynamodb_table_prefix=unique("sl"),
            state_machine_arn=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
            privacy_mode=CONSENT_FIRST,
            edge_gallery=True,
        )
        svc = build_services(
            settings, s3=s3, dynamodb=ddb, face_index=index, stepfunctions=client("stepfunctions")
        )
        svc.repos.create_tables()  # type: ignore[attr-defined]
        yield svc, s3, bucket


def _edge_gate(bucket: str, tmp_path: Path) -> UnmatchedGate:
    """What an edge agent builds: its own S3 client, the gallery object, a local embedder."""
    from core.aws.s3 import S3BlobStore

    edge_s3 = client("s3")  # another client: the edge never shares the backend's
    gallery = BlobGallery(S3BlobStore(bucket=bucket, client=edge_s3))
    return UnmatchedGate(LocalFaceIndex(tmp_path / "edge"), gallery, refresh_seconds=0)


def _crop(photo: str) -> list[FaceCrop]:
    now = datetime.now(UTC)
    return [FaceCrop(photo_bytes(photo), BoundingBox(0, 0, 100, 100), None, now, 0.9)]


def test_gallery_round_trip_enrol_match_withdraw(aws: tuple[Services, Any, str], tmp_path: Path) -> None:
    svc, s3, bucket = aws
    gate = _edge_gate(bucket, tmp_path)
    assert gate.match(_crop("obama2"), "yunet") is None  # no gallery object yet: nobody matches

    barack = enrol(svc, "Barack", "obama")
    grace = enrol(svc, "Grace", "grace_hopper")
    head = s3.head_object(Bucket=bucket, Key=GALLERY_KEY)
    assert head["ServerSideEncryption"] in ("AES256", "aws:kms")  # encrypted at rest
    stored = decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())
    assert set(stored.customer_ids) == {barack.customer_id, grace.customer_id}
    assert stored.vectors.shape == (2, 128)

    # The edge recognises him from another photo, and a stranger stays unmatched.
    assert gate.match(_crop("obama2"), "yunet") == barack.customer_id
    assert gate.match(_crop("biden"), "yunet") is None

    # Withdrawal (= erasure) takes him out of the object at once.
    token = consent_service(svc).withdrawal_link(barack.customer_id).split("withdraw=", 1)[1]
    consent_service(svc).withdraw(token)
    stored = decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())
    assert stored.customer_ids == (grace.customer_id,)
    assert gate.match(_crop("obama2"), "yunet") is None

    # Staff erasure and the retention sweep do the same.
    svc.privacy.purge(now=datetime.now(UTC) + timedelta(days=svc.settings.customer_retention_days + 1))
    stored = decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())
    assert len(stored) == 0
    assert gate.match(_crop("grace_hopper"), "yunet") is None


def test_a_process_that_cannot_embed_still_removes_people(aws: tuple[Services, Any, str]) -> None:
    svc, s3, bucket = aws
    barack = enrol(svc, "Barack", "obama")
    grace = enrol(svc, "Grace", "grace_hopper")
    assert svc.gallery is not None
    svc.gallery.embed = None  # a Lambda without the ONNX engine
    svc.privacy.erase(grace.customer_id)
    stored = decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())
    assert stored.customer_ids == (barack.customer_id,)  # kept from the previous object


def test_the_cli_rewrites_the_gallery_with_photos_a_lambda_could_not_embed(
    aws: tuple[Services, Any, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import core.cli
    from core.gallery import local_image_embedder

    svc, s3, bucket = aws
    assert svc.gallery is not None
    svc.gallery.embed = None  # enrolled while only a Lambda-like process ran
    barack = enrol(svc, "Barack", "obama")
    assert len(decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())) == 0
    svc.gallery.embed = local_image_embedder()  # the operator's machine has the engine
    monkeypatch.setattr(core.cli, "_services", lambda args: svc)
    assert core.cli.main(["edge-gallery"]) == 0
    assert "1 template(s) of 1 consented customer(s)" in capsys.readouterr().out
    stored = decode_templates(s3.get_object(Bucket=bucket, Key=GALLERY_KEY)["Body"].read())
    assert stored.customer_ids == (barack.customer_id,)
