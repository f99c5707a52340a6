"""S3BlobStore: face crops in an S3 bucket.

Objects are written with server-side encryption (SSE-S3 by default, SSE-KMS
when ``kms_key_id`` is given). Crops of unapproved people live under the
``pending/`` prefix, which the bucket's lifecycle rule expires (see
``infra/template.yaml`` and :meth:`S3BlobStore.ensure_bucket`).

>>> store = S3BlobStore(bucket="storelens-crops", client=s3_client)  # doctest: +SKIP
>>> store.put("pending/pid_1/face.jpg", jpeg)                          # doctest: +SKIP
>>> store.url("pending/pid_1/face.jpg", expires_seconds=300)          # doctest: +SKIP
'https://storelens-crops.s3.amazonaws.com/pending/pid_1/face.jpg?X-Amz-...'
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from core.aws._common import AwsAdapter, error_code
from core.crop_keys import PENDING_PREFIX
from core.errors import BackendError, NotFoundError, ValidationError

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore(AwsAdapter):
    """Implements ``core.ports.BlobStore`` on one S3 bucket."""

    service = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        kms_key_id: str | None = None,
    ) -> None:
        if not bucket:
            raise ValidationError("S3BlobStore needs a bucket name (STORELENS_S3_BUCKET)")
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)

    @staticmethod
    def _check(key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"invalid blob key {key!r}")
        return key

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Store ``data`` under ``key``, encrypted at rest."""
        extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        self.client.put_object(
            Bucket=self.bucket, Key=self._check(key), Body=data, ContentType=content_type, **extra
        )

    def get(self, key: str) -> bytes:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._check(key))
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise NotFoundError(f"no blob {key}") from exc
            raise
        return bytes(resp["Body"].read())

    def delete(self, key: str) -> None:
        # S3 DeleteObject succeeds for a missing key, as the port requires.
        self.client.delete_object(Bucket=self.bucket, Key=self._check(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._check(key))
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def url(self, key: str, expires_seconds: int = 3600) -> str | None:
        """A presigned GET URL valid for ``expires_seconds`` (the bucket stays private)."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._check(key)},
                ExpiresIn=expires_seconds,
            )
        )

    def ensure_bucket(self, region: str | None = None, pending_expiry_days: int = 30) -> None:
        """Create the bucket as the stack does (moto, live mode): private, encrypted,
        with a lifecycle rule expiring ``pending/`` crops. An existing bucket is kept."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = region or self.client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise BackendError(f"cannot create bucket {self.bucket}: {exc}") from exc
        self.client.put_public_access_block(
            Bucket=self.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.client.put_bucket_encryption(
            Bucket=self.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "expire-pending-crops",
                        "Filter": {"Prefix": PENDING_PREFIX},
                        "Status": "Enabled",
                        "Expiration": {"Days": pending_expiry_days},
                    }
                ]
            },
        )
