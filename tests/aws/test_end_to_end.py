"""End to end on the AWS backend: IoT event -> ingest Lambda -> Rekognition (Stubber)
-> Step Functions waits -> SES mail (read back from moto) -> link token -> approval API
-> record-decision Lambda -> the customer in DynamoDB. Plus bad events.

S3, DynamoDB, SES and Step Functions are moto (the real ASL executes, its Lambda
steps run the real handlers in-process); Rekognition is a real client wrapped in
botocore's Stubber, so every request is checked against the service model with
exact parameters.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.aws.moto_support import REGION, client, unique
from tests.aws.sfn_harness import Machine, approval_machine, wait_task_submitted

COLLECTION = "storelens-faces"
SENDER = "storelens@example.com"
APPROVER = "approver@example.com"


def jpeg(size: int = 160, shade: int = 128) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (shade, 100, 90)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def face_event(crop: bytes, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "store_id": "store-1",
        "camera_id": "cam-entrance",
        "zone": "entrance",
        "captured_at": "2026-11-23T10:15:00.000Z",
        "bbox": {"left": 100, "top": 80, "width": 120, "height": 140},
        "frame": {"width": 640, "height": 480},
        "detector": "ssd",
        "confidence": 0.97,
        "track_id": "t-1",
        "crop_jpeg_b64": base64.b64encode(crop).decode("ascii"),
    }
    doc.update(overrides)
    return doc


def track_event(crops: list[bytes], track_id: str, second: int = 0) -> dict[str, Any]:
    """A schema-v2 event: several crops of one track, best first."""
    return {
        "event_id": str(uuid.uuid4()),
        "schema_version": 2,
        "store_id": "store-1",
        "camera_id": "cam-entrance",
        "zone": "entrance",
        "frame": {"width": 640, "height": 480},
        "detector": "yunet",
        "track_id": track_id,
        "crops": [
            {
                "captured_at": f"2026-11-23T10:15:{second + i:02d}.000Z",
                "bbox": {"left": 100 + 5 * i, "top": 80, "width": 120, "height": 140},
                "face": {"left": 20, "top": 10, "width": 120, "height": 140},
                "confidence": 0.95,
                "quality": 0.9 - 0.1 * i,
                "jpeg_b64": base64.b64encode(crop).decode("ascii"),
            }
            for i, crop in enumerate(crops)
        ],
    }


def _face_record(face_id: str, external_id: str) -> dict[str, Any]:
    box = {"Width": 0.6, "Height": 0.7, "Left": 0.2, "Top": 0.1}
    return {
        "Face": {
            "FaceId": face_id,
            "BoundingBox": box,
            "ImageId": str(uuid.uuid4()),
            "ExternalImageId": external_id,
            "Confidence": 99.9,
        },
        "FaceDetail": {"BoundingBox": box, "Confidence": 99.9},
    }


@dataclass
class Stack:
    services: Any
    machine: Machine
    stub: Any
    s3: Any
    bucket: str

    def sent_mail(self) -> list[bytes]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        msgs = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        return [m.raw_data.encode() if isinstance(m.raw_data, str) else bytes(m.raw_data) for m in msgs]

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]


@contextmanager
def make_stack(tmp_path: Path) -> Iterator[Stack]:
    """Everything on moto, services injected into the Lambda runtime (also used by
    tests/aws/test_template_contract.py to trace the functions' calls)."""
    from botocore.stub import Stubber

    from core.aws.dynamodb import DynamoDbRepositories
    from core.aws.s3 import S3BlobStore
    from core.bootstrap import build_services
    from core.settings import Settings
    from infra.functions import runtime
    from infra.functions.expire import app as expire_app
    from infra.functions.notify import app as notify_app
    from infra.functions.record_decision import app as record_app

    handlers = {
        "notify": notify_app.handler,
        "record_decision": record_app.handler,
        "expire": expire_app.handler,
    }
    with approval_machine(handlers) as machine:
        bucket, prefix = unique("crops"), unique("sl")
        s3, ddb, ses = client("s3"), client("dynamodb"), client("ses")
        S3BlobStore(bucket=bucket, client=s3).ensure_bucket(REGION)
        DynamoDbRepositories(prefix=prefix, client=ddb).create_tables()
        ses.verify_email_identity(EmailAddress=SENDER)
        rekognition = client("rekognition")
        stub = Stubber(rekognition)
        stub.add_response("list_collections", {"CollectionIds": []}, {})
        stub.add_response(
            "create_collection", {"StatusCode": 200, "FaceModelVersion": "7.0"}, {"CollectionId": COLLECTION}
        )
        stub.activate()
        settings = Settings.from_env(
            {},
            backend="aws",
            data_dir=tmp_path / "data",
            secret_key="e2e-secret",
            aws_region=REGION,
            s3_bucket=bucket,
            dynamodb_table_prefix=prefix,
            state_machine_arn=machine.arn,
            ses_sender=SENDER,
            approval_recipients=APPROVER,
            collection_id=COLLECTION,
            public_url="https://approvals.example.com/prod",
        )
        services = build_services(
            settings, s3=s3, dynamodb=ddb, rekognition=rekognition, stepfunctions=machine.sfn, ses=ses
        )
        runtime.use(services)
        try:
            yield Stack(services, machine, stub, s3, bucket)
        finally:
            runtime.use(None)
            stub.deactivate()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with make_stack(tmp_path) as made:
        yield made


def _eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_unknown_face_is_approved_by_mail_link_into_a_customer(stack: Stack) -> None:
    from core.aws.rekognition import similarity_to_rekognition
    from core.models import PendingStatus
    from core.recognition import EVIDENCE_MARGIN, SEARCH_DEPTH
    from infra.functions.approval_api import app as approval_api
    from infra.functions.ingest import app as ingest_app

    svc, stub = stack.services, stack.stub
    crop = jpeg()
    # An event's crops are searched below the policy's lowest threshold (see core.recognition).
    floor = min(svc.settings.review_threshold, svc.settings.cluster_threshold) - EVIDENCE_MARGIN
    stub.add_response(
        "search_faces_by_image",
        {
            "FaceMatches": [],
            "SearchedFaceConfidence": 99.5,
            "SearchedFaceBoundingBox": {"Width": 0.6, "Height": 0.7, "Left": 0.2, "Top": 0.1},
        },
        {
            "CollectionId": COLLECTION,
            "Image": {"Bytes": crop},
            "MaxFaces": SEARCH_DEPTH,
            "FaceMatchThreshold": similarity_to_rekognition(floor),
            "QualityFilter": "NONE",
        },
    )
    pending_face = str(uuid.uuid4())
    stub.add_response(
        "index_faces",
        {"FaceRecords": [_face_record(pending_face, "PLACEHOLDER")], "UnindexedFaces": []},
        {
            "CollectionId": COLLECTION,
            "Image": {"Bytes": crop},
            "ExternalImageId": _StartsWith("pid_"),
            "DetectionAttributes": ["DEFAULT"],
            "MaxFaces": 1,
            "QualityFilter": "AUTO",
        },
    )

    # 1. The IoT rule invokes the ingest function with the event document.
    result = ingest_app.handler(face_event(crop))
    assert result["status"] == "ok" and result["outcome"] == "pending"
    pending_id = result["pending_id"]
    # Unapproved: under pending/, which the bucket's lifecycle rule expires.
    assert stack.objects() == [f"pending/2026/11/23/{result['event_id']}.jpg"]

    # 2. The execution waits on the notify task, which mailed the approver.
    execution = svc.workflow.execution_arn(pending_id)  # type: ignore[attr-defined]
    _eventually(lambda: len(stack.sent_mail()) == 1)
    wait_task_submitted(stack.machine.sfn, execution)  # the approver is never faster than this
    assert svc.workflow.describe(pending_id) == "RUNNING"  # type: ignore[attr-defined]
    msg = BytesParser(policy=policy.default).parsebytes(stack.sent_mail()[0])
    assert msg["To"] == APPROVER and msg["X-StoreLens-Pending-Id"] == pending_id
    assert any(p.get_content_type() == "image/jpeg" for p in msg.walk())
    text = msg.get_body(("plain",)).get_content()
    links = [w for w in text.split() if "/approvals?token=" in w]
    tokens = {}
    for link in links:
        token = parse_qs(urlparse(link.strip("<>()")).query)["token"][0]
        tokens[svc.approvals.verify_link(token).action] = token
    assert "approve" in tokens

    # 3. The approver opens the page (no login needed to see it) ...
    page = approval_api.handler(
        {"httpMethod": "GET", "resource": "/approvals", "queryStringParameters": {"token": tokens["approve"]}}
    )
    assert page["statusCode"] == 200 and "text/html" in page["headers"]["Content-Type"]
    assert stack.bucket in page["body"] and 'name="consent"' in page["body"]

    # ... and posts the decision with their Cognito identity.
    customer_face = str(uuid.uuid4())
    stub.add_response(
        "index_faces",
        {"FaceRecords": [_face_record(customer_face, "cus")], "UnindexedFaces": []},
        {
            "CollectionId": COLLECTION,
            "Image": {"Bytes": crop},
            "ExternalImageId": _StartsWith("cus_"),
            "DetectionAttributes": ["DEFAULT"],
            "MaxFaces": 1,
            "QualityFilter": "AUTO",
        },
    )
    stub.add_response(
        "delete_faces",
        {"DeletedFaces": [pending_face]},
        {"CollectionId": COLLECTION, "FaceIds": [pending_face]},
    )
    body = {
        "token": tokens["approve"],
        "action": "approve",
        "details": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "loyalty_id": "L-77",
            "consent": True,
        },
    }
    unauthenticated = approval_api.handler(
        {"httpMethod": "POST", "resource": "/decisions", "body": json.dumps(body)}
    )
    assert unauthenticated["statusCode"] == 401
    resp = approval_api.handler(
        {
            "httpMethod": "POST",
            "resource": "/decisions",
            "body": json.dumps(body),
            "requestContext": {"authorizer": {"claims": {"cognito:username": "alice", "sub": "u-1"}}},
        }
    )
    assert resp["statusCode"] == 202, resp["body"]

    # 4. The record-decision function ran inside the execution: a customer in DynamoDB.
    _eventually(lambda: svc.repos.pending.get(pending_id).status is PendingStatus.APPROVED)
    assert stack.machine.wait_status(execution) == "SUCCEEDED"
    [customer] = svc.repos.customers.list()
    assert (customer.name, customer.loyalty_id, customer.consent) == ("Ada Lovelace", "L-77", True)
    assert svc.repos.pending.get(pending_id).decided_by == "alice"
    [face] = svc.repos.faces.by_customer(customer.customer_id)
    assert face.index_face_id == customer_face
    # Approved: the crop moved out of the expiring prefix.
    assert stack.objects() == [f"crops/2026/11/23/{result['event_id']}.jpg"] == [face.crop_key]
    visits = svc.repos.visits.by_customer(customer.customer_id)
    assert [v.customer_id for v in visits] == [customer.customer_id]
    assert any(a.action == "approve" for a in svc.repos.audit.list(subject_id=customer.customer_id))
    stub.assert_no_pending_responses()

    # The link was single use.
    again = approval_api.handler(
        {
            "httpMethod": "POST",
            "resource": "/decisions",
            "body": json.dumps(body),
            "requestContext": {"authorizer": {"claims": {"cognito:username": "alice"}}},
        }
    )
    assert again["statusCode"] in (403, 409)


def test_multi_crop_events_of_one_track_make_one_pending_identity(stack: Stack) -> None:
    from core.aws.rekognition import similarity_from_rekognition, similarity_to_rekognition
    from core.models import FaceMatch
    from core.recognition import EVIDENCE_MARGIN, SEARCH_DEPTH
    from infra.functions.ingest import app as ingest_app

    svc, stub = stack.services, stack.stub
    floor = min(svc.settings.review_threshold, svc.settings.cluster_threshold) - EVIDENCE_MARGIN
    crops = [jpeg(160, shade) for shade in (100, 130, 160)]

    def search(crop: bytes, matches: list[dict[str, Any]]) -> None:
        stub.add_response(
            "search_faces_by_image",
            {"FaceMatches": matches},
            {
                "CollectionId": COLLECTION,
                "Image": {"Bytes": crop},
                "MaxFaces": SEARCH_DEPTH,
                "FaceMatchThreshold": similarity_to_rekognition(floor),
                "QualityFilter": "NONE",
            },
        )

    def index(crop: bytes, face_id: str | None) -> None:
        records = [_face_record(face_id, "pid")] if face_id else []
        unindexed = [] if face_id else [{"Reasons": ["LOW_SHARPNESS"]}]
        stub.add_response(
            "index_faces",
            {"FaceRecords": records, "UnindexedFaces": unindexed},
            {
                "CollectionId": COLLECTION,
                "Image": {"Bytes": crop},
                "ExternalImageId": _StartsWith("pid_"),
                "DetectionAttributes": ["DEFAULT"],
                "MaxFaces": 1,
                "QualityFilter": "AUTO",
            },
        )

    # Event 1: three crops, one SearchFacesByImage each; Rekognition sees no face
    # in the second, which is no evidence rather than an error.
    search(crops[0], [])
    stub.add_client_error(
        "search_faces_by_image", "InvalidParameterException", "There are no faces in the image."
    )
    search(crops[2], [])
    face_ids = [str(uuid.uuid4()) for _ in range(4)]
    index(crops[0], face_ids[0])
    index(crops[1], None)  # filtered by IndexFaces' quality filter: kept as a photo only
    index(crops[2], face_ids[1])
    first = ingest_app.handler(track_event(crops, "cam-entrance-ab12-7"))
    assert first["status"] == "ok" and first["outcome"] == "pending"
    pending_id = first["pending_id"]
    eid = first["event_id"]
    assert sorted(stack.objects()) == [f"pending/2026/11/23/{eid}{s}.jpg" for s in ("-1", "-2", "")]
    faces = svc.repos.faces.by_pending(pending_id)
    assert len(faces) == 3
    assert sorted(f.index_face_id or "" for f in faces) == sorted(["", face_ids[0], face_ids[1]])
    link = svc.repos.tracks.get("store-1", "cam-entrance", "cam-entrance-ab12-7")
    assert link is not None and link.pending_id == pending_id and link.customer_id is None

    # Event 2 of the same track: Rekognition's 85 % for one crop is 0.46 on the
    # common scale, and the other crop has no hit, so on their own these crops
    # would not even join the pending identity (cluster threshold 0.50) -- the
    # track joins it anyway instead of opening a second identity.
    later = [jpeg(160, 190), jpeg(160, 210)]
    weak = {"Similarity": 85.0, "Face": {"FaceId": face_ids[0], "ExternalImageId": pending_id}}
    hit = FaceMatch(face_ids[0], pending_id, similarity_from_rekognition(85.0))
    alone = svc.ingest.recognition.decide_crops([[hit], []], [0.9, 0.8])
    assert alone.pending_id is None
    search(later[0], [weak])
    search(later[1], [])
    index(later[0], face_ids[2])
    index(later[1], face_ids[3])
    second = ingest_app.handler(track_event(later, "cam-entrance-ab12-7", second=30))
    assert second["status"] == "ok" and second["pending_id"] == pending_id
    assert len(svc.repos.faces.by_pending(pending_id)) == 5
    assert svc.repos.pending.get(pending_id).face_count == 5
    assert [p.pending_id for p in svc.repos.pending.list()] == [pending_id]
    _eventually(lambda: len(stack.sent_mail()) == 1)  # one approval request for the person
    stub.assert_no_pending_responses()


class _StartsWith:
    """Stubber parameter matcher: a string with this prefix (ids are random)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self.prefix)

    def __repr__(self) -> str:
        return f"<str starting with {self.prefix!r}>"


def _nothing_written(stack: Stack) -> None:
    repos = stack.services.repos
    assert stack.objects() == []
    counts = repos.table_counts()
    assert {k: v for k, v in counts.items() if v and k != "dead_letters"} == {}


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: {k: v for k, v in d.items() if k != "zone"}, "EventSchemaError"),
        (lambda d: {**d, "schema_version": 2}, "EventSchemaError"),
        (
            lambda d: {**d, "crop_jpeg_b64": base64.b64encode(b"\xff\xd8garbage\xff\xd9").decode()},
            "ImageDecodeError",
        ),
        (lambda d: {**d, "bbox": {"left": 0, "top": 0, "width": 20, "height": 20}}, "FaceTooSmallError"),
    ],
)
def test_bad_events_are_dead_lettered_without_partial_writes(stack: Stack, mutate: Any, error: str) -> None:
    from infra.functions.ingest import app as ingest_app

    doc = mutate(face_event(jpeg()))
    result = ingest_app.handler(doc)
    assert result["status"] == "rejected" and result["error"] == error and result["reason"]
    [letter] = stack.services.repos.events.dead_letters()
    assert letter.error_type == error and letter.source == "iot" and letter.payload
    _nothing_written(stack)
    stack.stub.assert_no_pending_responses()  # Rekognition was never asked


def test_backend_failure_is_raised_for_lambda_retry_and_writes_nothing(stack: Stack) -> None:
    from botocore.exceptions import ClientError

    from infra.functions.ingest import app as ingest_app

    stack.stub.add_client_error(
        "search_faces_by_image", "InternalServerError", "Rekognition is down", http_status_code=500
    )
    doc = face_event(jpeg())
    with pytest.raises(ClientError):
        ingest_app.handler(doc)
    _nothing_written(stack)
    assert not stack.services.repos.events.is_processed(doc["event_id"])  # a retry will process it


def test_approval_api_answers_errors_clearly(stack: Stack) -> None:
    from infra.functions.approval_api import app as approval_api

    claims = {"requestContext": {"authorizer": {"claims": {"cognito:username": "alice"}}}}
    forged = approval_api.handler(
        {"httpMethod": "GET", "resource": "/approvals", "queryStringParameters": {"token": "abc.def"}}
    )
    assert forged["statusCode"] == 403 and json.loads(forged["body"])["error"] == "TokenError"
    bad_json = approval_api.handler({"httpMethod": "POST", "resource": "/decisions", "body": "{", **claims})
    assert bad_json["statusCode"] == 400
    missing = approval_api.handler(
        {"httpMethod": "POST", "resource": "/decisions", "body": json.dumps({"action": "reject"}), **claims}
    )
    assert missing["statusCode"] == 400
    assert approval_api.handler({"httpMethod": "DELETE", "resource": "/x"})["statusCode"] == 404


def test_hourly_sweep_heartbeats_waiting_approvals(stack: Stack) -> None:
    from core.models import PendingIdentity, PendingKind, PendingStatus, new_id, utcnow
    from infra.functions.expire import app as expire_app

    svc = stack.services
    now = utcnow()
    pending = PendingIdentity(
        pending_id=new_id("pid"),
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=now,
        last_seen_at=now,
        expires_at=now.replace(year=now.year + 1),
        store_id="store-1",
    )
    svc.repos.pending.add(pending)
    svc.approvals.request(pending)
    execution = svc.workflow.execution_arn(pending.pending_id)  # type: ignore[attr-defined]
    wait_task_submitted(stack.machine.sfn, execution)
    _eventually(lambda: bool(svc.workflow._tokens.get(pending.pending_id)))  # type: ignore[attr-defined]
    report = expire_app.handler({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert report == {"expired": [], "heartbeats": 1}
    assert svc.workflow.describe(pending.pending_id) == "RUNNING"  # type: ignore[attr-defined]
