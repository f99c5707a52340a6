"""BlobStore contract: the same behaviour from FileBlobStore and S3BlobStore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import NotFoundError, ValidationError
from core.ports import BlobStore
from tests.aws.moto_support import REGION, client, moto, unique


@pytest.fixture(params=["local", "aws"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        from core.local.blobs import FileBlobStore

        yield FileBlobStore(tmp_path / "blobs")
        return
    from core.aws.s3 import S3BlobStore

    with moto():
        store = S3BlobStore(bucket=unique("crops"), client=client("s3"))
        store.ensure_bucket(REGION)
        yield store


def test_put_get_roundtrip_and_overwrite(blobs: BlobStore) -> None:
    blobs.put("pending/pid_1/a.jpg", b"\xff\xd8one")
    assert blobs.get("pending/pid_1/a.jpg") == b"\xff\xd8one"
    blobs.put("pending/pid_1/a.jpg", b"two", content_type="application/octet-stream")
    assert blobs.get("pending/pid_1/a.jpg") == b"two"


def test_missing_key_raises_not_found(blobs: BlobStore) -> None:
    with pytest.raises(NotFoundError):
        blobs.get("nope/missing.jpg")
    assert blobs.exists("nope/missing.jpg") is False


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put("a/b.jpg", b"x")
    assert blobs.exists("a/b.jpg")
    blobs.delete("a/b.jpg")
    blobs.delete("a/b.jpg")
    assert not blobs.exists("a/b.jpg")
    with pytest.raises(NotFoundError):
        blobs.get("a/b.jpg")


def test_list_is_sorted_and_filtered_by_prefix(blobs: BlobStore) -> None:
    for key in ("faces/c.jpg", "faces/a.jpg", "pending/p/z.jpg", "faces/sub/b.jpg"):
        blobs.put(key, b"x")
    assert blobs.list("faces/") == ["faces/a.jpg", "faces/c.jpg", "faces/sub/b.jpg"]
    assert blobs.list() == ["faces/a.jpg", "faces/c.jpg", "faces/sub/b.jpg", "pending/p/z.jpg"]
    assert blobs.list("none/") == []


def test_binary_content_survives(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 64
    blobs.put("bin/all.bytes", data)
    assert blobs.get("bin/all.bytes") == data


@pytest.mark.parametrize("key", ["", "/abs.jpg", "a/../b.jpg", "a//b.jpg"])
def test_invalid_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValidationError):
        blobs.put(key, b"x")


def test_url_is_none_or_a_fetchable_url(blobs: BlobStore) -> None:
    blobs.put("faces/u.jpg", b"x")
    url = blobs.url("faces/u.jpg", expires_seconds=60)
    assert url is None or url.startswith(("http://", "https://"))
