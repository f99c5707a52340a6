"""S3-specific behaviour beyond the BlobStore contract: SSE, presigning, lifecycle."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from core.aws.s3 import PENDING_PREFIX, S3BlobStore
from tests.aws.moto_support import REGION, client, moto, unique


def test_objects_are_encrypted_and_bucket_is_private_with_pending_expiry() -> None:
    with moto():
        s3 = client("s3")
        store = S3BlobStore(bucket=unique("crops"), client=s3)
        store.ensure_bucket(REGION, pending_expiry_days=30)
        store.put("pending/pid_1/a.jpg", b"x")
        head = s3.head_object(Bucket=store.bucket, Key="pending/pid_1/a.jpg")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentType"] == "image/jpeg"
        block = s3.get_public_access_block(Bucket=store.bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        rules = s3.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
        assert rules[0]["Filter"]["Prefix"] == PENDING_PREFIX
        assert rules[0]["Expiration"]["Days"] == 30
        store.ensure_bucket(REGION)  # idempotent


def test_presigned_url_names_bucket_key_and_expiry() -> None:
    with moto():
        store = S3BlobStore(bucket=unique("crops"), client=client("s3"))
        store.ensure_bucket(REGION)
        store.put("faces/cus_1/a.jpg", b"x")
        url = store.url("faces/cus_1/a.jpg", expires_seconds=120)
        assert url is not None
        parsed = urlparse(url)
        assert store.bucket in url and parsed.path.endswith("/faces/cus_1/a.jpg")
        query = parse_qs(parsed.query)
        assert query.get("X-Amz-Expires") == ["120"] or "Expires" in query


def test_no_client_is_built_until_first_use() -> None:
    store = S3BlobStore(bucket="b")
    assert store._client is None


def test_built_client_presigns_with_sigv4() -> None:
    with moto():
        store = S3BlobStore(bucket=unique("crops"), region=REGION)
        store.ensure_bucket(REGION)
        store.put("faces/a.jpg", b"x")
        url = store.url("faces/a.jpg", expires_seconds=90)
        assert url is not None and parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["90"]
