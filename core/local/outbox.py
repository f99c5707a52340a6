"""OutboxNotifier: approval e-mails written as ``.eml`` files, not sent."""

from __future__ import annotations

import os
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from core.models import new_id, utcnow
from core.ports import OutgoingMail

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class OutboxNotifier:
    """Implements ``core.ports.Notifier`` with a folder of RFC 5322 files.

    File names start with a sortable UTC timestamp and carry the subject id,
    so ``forget(subject_id)`` can delete every mail about an erased person.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, mail: OutgoingMail) -> str:
        message_id = new_id("msg")
        name = f"{utcnow():%Y%m%dT%H%M%S%f}_{_SAFE.sub('_', mail.subject_id)}_{message_id}.eml"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # mails show face crops
        with os.fdopen(fd, "wb") as fh:
            fh.write(mail.mime)
        os.replace(tmp, self.folder / name)
        return message_id

    def forget(self, subject_id: str) -> int:
        """Delete every stored mail about ``subject_id`` (and half-written ones); returns how many."""
        for stale in self.folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        marker = f"_{_SAFE.sub('_', subject_id)}_"
        gone = 0
        for path in self.folder.glob("*.eml"):
            if marker in path.name:
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def messages(self) -> list[tuple[Path, EmailMessage]]:
        """Stored mails, newest first, parsed (for the Outbox page and tests)."""
        out = []
        for path in sorted(self.folder.glob("*.eml"), reverse=True):
            with path.open("rb") as fh:
                msg = BytesParser(policy=policy.default).parse(fh)
            out.append((path, msg))
        return out
