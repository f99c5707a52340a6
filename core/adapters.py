"""What one backend provides to :func:`core.bootstrap.build_services`.

``core/local/backend.py`` and ``core/aws/backend.py`` each return one
:class:`BackendAdapters`; the bootstrap builds the services on top. Optional
abilities are typed fields that are ``None`` where a backend lacks them, so
callers ask the services (``services.outbox is None``) instead of checking the
backend's name or probing objects with ``getattr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.analytics import AnalyticsQueries
    from core.auth import Authenticator
    from core.aws.cognito import CognitoVerifier
    from core.ports import (
        ApprovalCallbacks,
        ApprovalWorkflow,
        BlobStore,
        EventPublisher,
        FaceEmbedder,
        FaceIndex,
        GalleryStore,
        Notifier,
        Outbox,
        Repositories,
    )

#: Builds the approval workflow around the callbacks it drives (notify, record, expire).
WorkflowFactory = Callable[["ApprovalCallbacks"], "ApprovalWorkflow"]


def _nothing_to_close() -> None:
    """Backends whose clients hold no connections."""


@dataclass(frozen=True)
class BackendAdapters:
    """One backend's adapters, and the optional abilities it has."""

    blobs: BlobStore
    repos: Repositories
    faces: FaceIndex
    notifier: Notifier
    workflow: WorkflowFactory
    analytics: AnalyticsQueries
    authenticator: Authenticator
    #: The local backend's folder of e-mails (the dashboard's Outbox page).
    outbox: Outbox | None = None
    #: Publishes FaceEvents into the cloud pipeline (AWS IoT Core).
    iot_publisher: EventPublisher | None = None
    #: Verifies sign-in tokens sent to the approval API (Cognito).
    token_verifier: CognitoVerifier | None = None
    #: Face templates as vectors, for comparing two photos (the local engine).
    embedder: FaceEmbedder | None = None
    #: Where consented customers' templates are published for edge agents (AWS, STORELENS_EDGE_GALLERY).
    gallery_store: GalleryStore | None = None
    #: Expired identities must be purged by this process (no lifecycle rules or scheduled jobs).
    purges_in_process: bool = False
    #: Releases connections the backend holds (SQLite).
    close: Callable[[], None] = _nothing_to_close
