"""Builds the embedded local backend: SQLite, files, dlib index, inline workflow, outbox."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from core.adapters import BackendAdapters
from core.settings import Settings

if TYPE_CHECKING:
    from core.local.faces import LocalFaceIndex


def build_local(
    settings: Settings, *, face_index: LocalFaceIndex | None = None, **_unused: Any
) -> BackendAdapters:
    """The local adapters for :func:`core.bootstrap.build_services`.

    ``face_index`` lets callers share one loaded index (and its models)
    between service instances, e.g. across tests.
    """
    from core.auth import LocalAuthenticator
    from core.local.analytics import SqliteAnalytics
    from core.local.blobs import FileBlobStore
    from core.local.outbox import OutboxNotifier
    from core.local.sessions import SqliteLoginLimiter
    from core.local.sqlite import SqliteRepositories
    from core.local.workflow import InlineWorkflow
    from core.users import UserStore

    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    # Faces, crops and mails: owner-only (files inside are 0600 as well).
    os.chmod(data, 0o700)
    repos = SqliteRepositories(
        data / "storelens.db",
        dead_letter_image_hours=settings.dead_letter_image_hours,
        dead_letter_max_count=settings.dead_letter_max_count,
        dead_letter_max_bytes=settings.dead_letter_max_bytes,
    )
    if face_index is None:
        from core.local.faces import LocalFaceIndex

        face_index = LocalFaceIndex(data, db=repos.db)
    outbox = OutboxNotifier(data / "outbox")
    return BackendAdapters(
        blobs=FileBlobStore(data / "blobs"),
        repos=repos,
        faces=face_index,
        notifier=outbox,
        workflow=lambda callbacks: InlineWorkflow(repos, callbacks),
        # Dashboard aggregation runs in SQL over indexes, never pandas over tables.
        analytics=SqliteAnalytics(
            repos.connection, gap_seconds=settings.visit_gap_seconds, timezone=settings.timezone
        ),
        # Failed attempts are counted in SQLite, so the limit holds across dashboard processes.
        authenticator=LocalAuthenticator(UserStore.for_data_dir(data), SqliteLoginLimiter(repos.db)),
        outbox=outbox,
        embedder=face_index,
        purges_in_process=True,
        close=repos.close,
    )
