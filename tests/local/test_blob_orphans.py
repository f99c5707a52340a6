"""Temp files of crashed crop writers are swept; a live writer's are not."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core.local.blobs import FileBlobStore


def _orphan(root: Path) -> Path:
    """A temp file exactly as a writer killed mid-``put`` leaves it: fresh and unlocked."""
    path = root / "crops" / ".tmp-orphan"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a jpeg")
    return path


def test_a_fresh_orphan_is_swept_when_no_writer_is_active(tmp_path: Path) -> None:
    FileBlobStore(tmp_path)
    orphan = _orphan(tmp_path)  # younger than any age limit
    store = FileBlobStore(tmp_path)  # a restart right after the crash
    assert not orphan.exists()
    store.put("crops/a.jpg", b"jpeg")
    assert store.list() == ["crops/a.jpg"]  # the writers' lock file is not a blob


def test_a_live_writers_temp_file_survives_a_sweep_from_another_process(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    # Another process is mid-put: it holds the writers' lock shared and its own temp file locked.
    live = tmp_path / "crops" / ".tmp-live"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"being written")
    os.utime(live, (0, 0))  # old: only the locks protect it
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys
            w = os.open({str(tmp_path / FileBlobStore.WRITERS_LOCK)!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(w, fcntl.LOCK_SH)
            f = os.open({str(live)!r}, os.O_RDONLY)
            fcntl.flock(f, fcntl.LOCK_EX)
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        orphan = _orphan(tmp_path)
        os.utime(orphan, (0, 0))
        assert store.sweep() == 1  # the old unlocked orphan only
        assert live.exists() and not orphan.exists()
        fresh = _orphan(tmp_path)  # a writer's instant between creating and locking its file
        assert store.sweep() == 0 and fresh.exists()
    finally:
        holder.kill()
        holder.wait()
    assert store.sweep() == 2  # the writer died: both are orphans now


def test_put_holds_the_writers_lock_shared_only_while_writing(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    store.put("a/b.jpg", b"x" * 1000)
    fd = os.open(tmp_path / FileBlobStore.WRITERS_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a put leaked its lock
    finally:
        os.close(fd)
    assert store.get("a/b.jpg") == b"x" * 1000
