"""Live mode without an account: a real moto server on 127.0.0.1, the resources
created by ``infra/local_stack.py``, and services built from settings alone
(exactly what the dashboard does with ``STORELENS_BACKEND=aws``)."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.models import CustomerDetails, Face, FaceStatus, PendingIdentity, PendingKind, PendingStatus, new_id
from core.ports import Decision
from tests.aws.moto_support import fake_credentials


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    def reset() -> None:
        # A threaded server shares moto's in-process state: start and end clean.
        request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    reset()
    try:
        with fake_credentials():
            yield endpoint
    finally:
        reset()
        server.stop()


@pytest.fixture
def live(moto_server: str, tmp_path: Path) -> Iterator[Any]:
    """Services built from the environment ``local_stack`` prints, nothing injected."""
    from core.bootstrap import build_services
    from core.settings import Settings
    from infra.local_stack import create

    stack = create(
        moto_server,
        bucket=f"crops-{uuid.uuid4().hex[:8]}",
        table_prefix="live",
        admin=("ann", "Live-mode-passw0rd"),
    )
    env = {k: v for k, v in stack.environment().items() if k.startswith("STORELENS_")}
    env.update(
        STORELENS_DATA_DIR=str(tmp_path / "data"),
        STORELENS_SECRET_KEY="live-secret",
        STORELENS_APPROVAL_RECIPIENTS="boss@example.com",
    )
    assert create(moto_server, bucket=stack.bucket, table_prefix="live") == stack  # idempotent
    svc = build_services(Settings.from_env(env))
    try:
        yield svc
    finally:
        svc.close()


def _sent_count(svc: Any) -> int:
    ses = svc.notifier.client
    return int(ses.get_send_quota()["SentLast24Hours"])


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 120, 150)).save(buf, format="JPEG")
    return buf.getvalue()


def test_services_on_a_moto_server_run_the_approval_flow(live: Any) -> None:
    from core.aws.backend import build_aws  # noqa: F401  (the backend under test)
    from core.aws.stepfunctions import StepFunctionsWorkflow
    from core.models import utcnow

    svc = live
    assert type(svc.repos).__name__ == "DynamoDbRepositories"
    assert isinstance(svc.workflow, StepFunctionsWorkflow) and svc.workflow.drive_inline
    assert svc.settings.collection_id in svc.faces.list_collections()

    # A crop in S3 is served to the dashboard by presigned URL from the server.
    crop = _jpeg()
    key = "crops/2026/11/23/live.jpg"
    svc.blobs.put(key, crop)
    url = svc.blobs.url(key, 60)
    assert url and url.startswith(svc.settings.aws_endpoint_url)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == crop

    # A pending identity: the workflow starts an execution and mails through SES.
    now = utcnow()
    pending = PendingIdentity(
        pending_id=new_id("pid"),
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=now,
        last_seen_at=now,
        expires_at=now.replace(year=now.year + 1),
        store_id="store-1",
        face_count=1,
    )
    svc.repos.pending.add(pending)
    svc.repos.faces.add(
        Face(
            face_id=new_id("fac"),
            event_id=None,
            crop_key=key,
            captured_at=now,
            camera_id="cam-1",
            zone="entrance",
            status=FaceStatus.PENDING,
            pending_id=pending.pending_id,
        )
    )
    assert _sent_count(svc) == 0
    svc.approvals.request(pending)
    assert svc.workflow.describe(pending.pending_id) == "RUNNING"
    assert _sent_count(svc) > 0  # moto counts recipients (Destinations plus the To header)
    # The mail itself, as a reviewer would read it from the server's /moto-api/data.json.
    with urllib.request.urlopen(f"{svc.settings.aws_endpoint_url}/moto-api/data.json", timeout=10) as resp:
        mails = json.loads(resp.read())["ses"]["RawMessage"]
    [mail] = [m for m in mails if pending.pending_id in m["raw_data"]]
    assert "/approvals?token=" in mail["raw_data"]

    # The approver decides in the dashboard; the customer lands in DynamoDB.
    details = CustomerDetails(name="Grace Hopper", email="grace@example.com", consent=True)
    svc.approvals.decide(pending.pending_id, Decision(action="approve", actor="alice", details=details))
    assert svc.repos.pending.get(pending.pending_id).status is PendingStatus.APPROVED
    assert svc.workflow.describe(pending.pending_id) == "ABORTED"  # stopped: decided in-process
    [customer] = svc.repos.customers.list()
    assert customer.name == "Grace Hopper"
    raw = svc.repos.client.scan(TableName="live-customers")["Items"]
    assert [i["name"]["S"] for i in raw] == ["Grace Hopper"]


def test_cognito_sign_in_on_the_server_verifies_with_the_servers_keys(live: Any) -> None:
    """The dashboard's pool on the moto server: its ID token checks out against the
    JWKS the server publishes (tokens keep the AWS issuer)."""
    settings = live.settings
    import boto3

    idp = boto3.client("cognito-idp", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    resp = idp.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=settings.cognito_client_id,
        AuthParameters={"USERNAME": "ann", "PASSWORD": "Live-mode-passw0rd"},
    )
    who = live.token_verifier.verify(resp["AuthenticationResult"]["IdToken"], token_use="id")
    assert who.username == "ann" and "admin" in who.groups


def _photo_event(name: str) -> bytes:
    from PIL import Image

    from core.schema import event_to_json
    from tests.support.photos import photo_bytes

    data = photo_bytes(name)
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        rgb.thumbnail((480, 480))
        buf = io.BytesIO()
        rgb.save(buf, format="JPEG", quality=90)
        width, height = rgb.size
    from datetime import UTC, datetime

    from core.models import BoundingBox, FaceEvent

    return event_to_json(
        FaceEvent(
            event_id=str(uuid.uuid4()),
            store_id="store-1",
            camera_id="cam-1",
            zone="entrance",
            captured_at=datetime.now(UTC),
            bbox=BoundingBox(0, 0, width, height),
            frame_width=width,
            frame_height=height,
            detector="test",
            confidence=0.99,
            track_id=name,
            crop_jpeg=buf.getvalue(),
        )
    )


def test_live_mode_recognises_a_returning_customer(live: Any) -> None:
    svc = live
    first = svc.ingest.ingest(_photo_event("obama"), source="live-test")
    assert first.outcome.value == "pending"
    svc.approvals.decide(
        first.pending_id,
        Decision(action="approve", actor="alice", details=CustomerDetails(name="Barack", consent=True)),
    )
    [customer] = svc.repos.customers.list()
    again = svc.ingest.ingest(_photo_event("obama2"), source="live-test")
    assert again.outcome.value == "visit" and again.customer_id == customer.customer_id
    stranger = svc.ingest.ingest(_photo_event("biden"), source="live-test")
    assert stranger.outcome.value == "pending" and stranger.customer_id is None
    feed = svc.repos.events.recent()
    assert [e.outcome for e in feed][:1] == ["pending"]
    assert json.dumps([e.event_id for e in feed])


def test_local_stack_writes_the_env_file_only_on_success(
    moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's command: a bad password or no server exits non-zero and leaves no env file."""
    from core.settings import Settings
    from infra.local_stack import main

    out = tmp_path / ".env.aws-local"
    weak = main(["--endpoint", moto_server, "--admin-password", "choose-one-8+", "--out", str(out)])
    assert weak == 2 and not out.exists()
    assert "Storelens-admin-1" in capsys.readouterr().err  # says what would pass
    down = main(["--endpoint", "http://127.0.0.1:9", "--out", str(out)])
    assert down == 2 and not out.exists()
    ok = main(["--endpoint", moto_server, "--admin-password", "Storelens-admin-1", "--out", str(out)])
    assert ok == 0
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env["STORELENS_PUBLIC_URL"] == "http://localhost:8501"
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("STORELENS_")})
    assert settings.backend == "aws" and settings.s3_bucket == "storelens-crops"
