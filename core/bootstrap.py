"""The one place that picks a backend and wires the services.

>>> services = build_services(Settings.from_env({}))          # doctest: +SKIP
>>> services.ingest.ingest(open("event.json", "rb").read())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.settings import BACKENDS, Settings

if TYPE_CHECKING:
    from core.adapters import BackendAdapters
    from core.analytics import AnalyticsQueries
    from core.approvals import ApprovalService
    from core.auth import Authenticator
    from core.aws.cognito import CognitoVerifier
    from core.customers import CustomerService
    from core.gallery import GalleryPublisher
    from core.ingest import IngestService
    from core.ports import (
        ApprovalWorkflow,
        BlobStore,
        EventPublisher,
        FaceIndex,
        Notifier,
        Outbox,
        Repositories,
    )
    from core.privacy import PrivacyService
    from core.recognition import RecognitionPolicy


def _nothing_to_close() -> None:
    """Services built by hand hold nothing to release."""


@dataclass
class Services:
    """Everything a page, CLI command or Lambda handler needs.

    The optional fields are the abilities only some backends have; ask them
    (``if services.outbox is not None``) rather than the backend's name.
    """

    settings: Settings
    blobs: BlobStore
    repos: Repositories
    faces: FaceIndex
    notifier: Notifier
    workflow: ApprovalWorkflow
    recognition: RecognitionPolicy
    ingest: IngestService
    approvals: ApprovalService
    customers: CustomerService
    privacy: PrivacyService
    analytics: AnalyticsQueries
    authenticator: Authenticator
    #: The local backend's folder of e-mails (the Outbox page); ``None`` on AWS.
    outbox: Outbox | None = None
    #: Publishes FaceEvents into the cloud pipeline (AWS IoT Core); ``None`` locally.
    iot_publisher: EventPublisher | None = None
    #: Verifies Cognito sign-in tokens (the approval API); ``None`` without Cognito.
    token_verifier: CognitoVerifier | None = None
    #: Rewrites the edge agents' gallery of consented templates (AWS with STORELENS_EDGE_GALLERY).
    gallery: GalleryPublisher | None = None
    #: Expired identities are purged by a thread of this process (``privacy.start_auto_purge``),
    #: not by lifecycle rules and a scheduled Lambda (AWS).
    purges_in_process: bool = False
    _close: Callable[[], None] = field(default=_nothing_to_close, repr=False)

    def close(self) -> None:
        """Release connections (SQLite) held by the backend (after any background purge stops)."""
        self.privacy.stop_auto_purge()
        self._close()


def build_services(settings: Settings | None = None, **clients: Any) -> Services:
    """Build the services for ``settings.backend``.

    ``clients`` are injected into the AWS adapters (``s3=``, ``dynamodb=``,
    ``rekognition=``, ``stepfunctions=``, ``ses=``...) so tests can pass moto or
    Stubber-wrapped clients; the local backend takes ``face_index=`` to share a
    loaded model between service instances.
    """
    settings = settings or Settings.from_env()
    if settings.backend == "local":
        from core.local.backend import build_local

        adapters = build_local(settings, **clients)
    elif settings.backend == "aws":
        from core.aws.backend import build_aws

        adapters = build_aws(settings, **clients)
    else:  # Settings validates this already; kept for direct construction.
        raise ValueError(f"unknown backend {settings.backend!r}; use one of: {', '.join(BACKENDS)}")
    return _assemble(settings, adapters)


def _assemble(settings: Settings, adapters: BackendAdapters) -> Services:
    from core.approvals import ApprovalService, DecisionRecorder
    from core.customers import CustomerService
    from core.gallery import GalleryPublisher, local_image_embedder
    from core.ingest import IngestService
    from core.privacy import PrivacyService
    from core.recognition import RecognitionPolicy

    blobs, repos, faces, notifier = adapters.blobs, adapters.repos, adapters.faces, adapters.notifier
    recognition = RecognitionPolicy(settings=settings, faces=faces, repos=repos)
    # The workflow calls the recorder back (notify, record_decision, expire);
    # approvals starts the workflow for each new pending identity.
    recorder = DecisionRecorder(settings=settings, repos=repos, blobs=blobs, faces=faces, notifier=notifier)
    workflow = adapters.workflow(recorder)
    approvals = ApprovalService(recorder=recorder, workflow=workflow)
    ingest = IngestService(
        settings=settings,
        repos=repos,
        blobs=blobs,
        recognition=recognition,
        approvals=approvals,
        embedder=adapters.embedder,
    )
    customers = CustomerService(
        settings=settings,
        repos=repos,
        blobs=blobs,
        faces=faces,
        recognition=recognition,
        embedder=adapters.embedder,
    )
    gallery = None
    if adapters.gallery_store is not None:
        embed = adapters.embedder.embed_image if adapters.embedder is not None else local_image_embedder()
        gallery = GalleryPublisher(repos=repos, blobs=blobs, store=adapters.gallery_store, embed=embed)
    privacy = PrivacyService(
        gallery=gallery,
        settings=settings,
        repos=repos,
        blobs=blobs,
        faces=faces,
        notifier=notifier,
        workflow=workflow,
        approvals=approvals,
    )
    recognition.ensure_collection()
    return Services(
        settings=settings,
        blobs=blobs,
        repos=repos,
        faces=faces,
        notifier=notifier,
        workflow=workflow,
        recognition=recognition,
        ingest=ingest,
        approvals=approvals,
        customers=customers,
        privacy=privacy,
        analytics=adapters.analytics,
        gallery=gallery,
        authenticator=adapters.authenticator,
        outbox=adapters.outbox,
        iot_publisher=adapters.iot_publisher,
        token_verifier=adapters.token_verifier,
        purges_in_process=adapters.purges_in_process,
        _close=adapters.close,
    )
