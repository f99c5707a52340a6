"""FileBlobStore: face crops as plain files under the data dir."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

from core.errors import NotFoundError, ValidationError


class FileBlobStore:
    """Implements ``core.ports.BlobStore`` on a directory.

    Writes go to a temporary file in the same directory, are fsynced and then
    renamed into place, so a crash never leaves a half-written crop behind a
    database row that points at it.
    """

    #: Every ``put`` holds a shared lock on this file while its temp file exists.
    WRITERS_LOCK = ".writers.lock"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._writers = self.root / self.WRITERS_LOCK
        self.sweep()

    def _writers_fd(self) -> int:
        # A fresh open file description per caller: flock locks belong to the
        # description, so threads sharing one fd would release each other's lock.
        return os.open(self._writers, os.O_RDWR | os.O_CREAT, 0o600)

    def sweep(self) -> int:
        """Delete ``.tmp-*`` files left by writers that crashed; returns how many.

        When no writer is mid-``put`` in any process (the writers' lock can be
        taken exclusively), every temp file is an orphan. Otherwise a live
        writer also holds an ``flock`` on its own temp file, so only unlocked
        files are removed, and only once older than a second (the instant
        between creating a temp file and locking it).
        """
        gone = 0
        now = time.time()
        writers = self._writers_fd()
        try:
            try:
                fcntl.flock(writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                idle = True
            except OSError:
                idle = False
            for path in self.root.rglob(".tmp-*"):
                if idle:
                    path.unlink(missing_ok=True)
                    gone += 1
                elif self._sweep_one(path, now):
                    gone += 1
        finally:
            os.close(writers)  # releases the lock
        return gone

    @staticmethod
    def _sweep_one(path: Path, now: float) -> bool:
        """Remove one temp file if no live writer holds it; True when removed."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if now - os.fstat(fd).st_mtime > 1.0:
                path.unlink(missing_ok=True)
                return True
        except OSError:
            pass  # locked: someone is writing it
        finally:
            os.close(fd)
        return False

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        writers = self._writers_fd()
        try:
            fcntl.flock(writers, fcntl.LOCK_SH)  # a sweep now cannot take every temp file for an orphan
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # tells a concurrent sweep() this file is not an orphan
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        finally:
            os.close(writers)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {key}") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        keys = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-") and p != self._writers
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def url(self, key: str, expires_seconds: int = 3600) -> str | None:
        # Local crops are served by the dashboard itself, not by URL.
        return None
