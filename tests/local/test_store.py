"""The local store's housekeeping: dead-letter caps and retention, orphan temp files, permissions."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.local.blobs import FileBlobStore
from core.local.sqlite import SqliteRepositories, strip_images
from core.models import DeadLetter, new_id


def _letter(event_id: str | None, reason: str, payload: bytes, at: datetime | None = None) -> DeadLetter:
    return DeadLetter(
        new_id("dlq"), at or datetime.now(UTC), "test", reason, "EventSchemaError", event_id, payload
    )


def test_dead_letters_are_deduplicated_and_capped(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "s.db", dead_letter_max_count=5, dead_letter_max_bytes=20_000)
    big = json.dumps({"event_id": "e", "crop_jpeg": "A" * 9000, "zone": 7}).encode()
    for _ in range(3):
        repos.events.add_dead_letter(_letter("e-1", "zone is wrong", big))
    assert len(repos.events.dead_letters()) == 1  # the same bad event retried is one letter
    for i in range(10):
        repos.events.add_dead_letter(_letter(f"e-{i + 2}", "zone is wrong", big))
    letters = repos.events.dead_letters()
    assert len(letters) == 5
    assert sum(len(x.payload) for x in letters) <= 20_000
    assert all(x.reason == "zone is wrong" for x in letters)  # metadata stays when images go
    newest = letters[0]
    assert json.loads(newest.payload)["crop_jpeg"] == "A" * 9000  # the newest keeps its image


def test_dead_letter_images_go_after_the_retention(tmp_path: Path) -> None:
    repos = SqliteRepositories(tmp_path / "s.db", dead_letter_image_hours=24)
    payload = json.dumps({"event_id": "e", "crop_jpeg": "QUJD" * 400, "store_id": "s1"}).encode()
    now = datetime.now(UTC)
    repos.events.add_dead_letter(_letter("old", "bad", payload, now - timedelta(hours=25)))
    repos.events.add_dead_letter(_letter("new", "bad", payload, now))
    with repos.atomic():
        assert repos.events.prune_dead_letters(now) == 1
    by_event = {x.event_id: x for x in repos.events.dead_letters()}
    old = json.loads(by_event["old"].payload)
    assert old["store_id"] == "s1" and old["crop_jpeg"].startswith("[dropped")
    assert by_event["new"].payload == payload
    assert strip_images(b"\xff\xd8 not json") == b""


def test_orphan_temp_blobs_are_swept_but_live_ones_kept(tmp_path: Path) -> None:
    import fcntl

    blobs = FileBlobStore(tmp_path / "blobs")
    blobs.put("pending/2026/11/02/a.jpg", b"jpeg")
    folder = tmp_path / "blobs" / "pending" / "2026" / "11" / "02"
    orphan, live = folder / ".tmp-orphan", folder / ".tmp-live"
    orphan.write_bytes(b"half a face")
    live.write_bytes(b"being written")
    for path in (orphan, live):
        os.utime(path, (0, 0))
    # A writer mid-put (as another process would): the writers' lock shared, its temp file exclusive.
    writers = os.open(tmp_path / "blobs" / FileBlobStore.WRITERS_LOCK, os.O_RDWR)
    fcntl.flock(writers, fcntl.LOCK_SH)
    fd = os.open(live, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        FileBlobStore(tmp_path / "blobs")
    finally:
        os.close(fd)
        os.close(writers)
    assert not orphan.exists() and live.exists()
    assert blobs.get("pending/2026/11/02/a.jpg") == b"jpeg"
    assert stat.S_IMODE(os.stat(folder / "a.jpg").st_mode) == 0o600


def test_data_dir_and_database_are_private(tmp_path: Path) -> None:
    from core.bootstrap import build_services
    from tests.conftest import make_settings

    data = tmp_path / "data"
    services = build_services(make_settings(data))
    services.close()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "storelens.db").st_mode) == 0o600
