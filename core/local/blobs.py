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

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep()

    def sweep(self) -> int:
        """Delete ``.tmp-*`` files left by writers that crashed; returns how many.

        A live writer holds an ``flock`` on its temp file, so only orphans
        (whose lock died with their process) are removed; the age check covers
        the instant between creating the file and locking it.
        """
        gone = 0
        now = time.time()
        for path in self.root.rglob(".tmp-*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if now - os.fstat(fd).st_mtime > 1.0:
                    path.unlink(missing_ok=True)
                    gone += 1
            except OSError:
                pass  # locked: someone is writing it
            finally:
                os.close(fd)
        return gone

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # tells sweep() this file is not an orphan
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def url(self, key: str, expires_seconds: int = 3600) -> str | None:
        # Local crops are served by the dashboard itself, not by URL.
        return None
