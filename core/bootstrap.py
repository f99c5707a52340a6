"""The one place that picks a backend and wires the services.

>>> services = build_services(Settings.from_env({}))          # doctest: +SKIP
>>> services.ingest.ingest(open("event.json", "rb").read())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.settings import BACKENDS, Settings

if TYPE_CHECKING:
    from core.approvals import ApprovalService
    from core.customers import CustomerService
    from core.ingest import IngestService
    from core.ports import ApprovalWorkflow, BlobStore, FaceIndex, Notifier, Repositories
    from core.privacy import PrivacyService
    from core.recognition import RecognitionPolicy


@dataclass
class Services:
    """Everything a page, CLI command or Lambda handler needs."""

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
    extras: dict[str, Any]

    def close(self) -> None:
        """Release connections (SQLite) held by the backend (after any background purge stops)."""
        self.privacy.stop_auto_purge()
        close = getattr(self.repos, "close", None)
        if callable(close):
            close()


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

        parts = build_local(settings, **clients)
    elif settings.backend == "aws":
        from core.aws.backend import build_aws

        parts = build_aws(settings, **clients)
    else:  # Settings validates this already; kept for direct construction.
        raise ValueError(f"unknown backend {settings.backend!r}; use one of: {', '.join(BACKENDS)}")
    return _assemble(settings, **parts)


def _assemble(
    settings: Settings,
    *,
    blobs: BlobStore,
    repos: Repositories,
    faces: FaceIndex,
    notifier: Notifier,
    workflow_factory: Any,
    extras: dict[str, Any] | None = None,
) -> Services:
    from core.approvals import ApprovalService
    from core.customers import CustomerService
    from core.ingest import IngestService
    from core.privacy import PrivacyService
    from core.recognition import RecognitionPolicy

    recognition = RecognitionPolicy(settings=settings, faces=faces, repos=repos)
    approvals = ApprovalService(settings=settings, repos=repos, blobs=blobs, faces=faces, notifier=notifier)
    # The workflow calls back into approvals (notify, record_decision);
    # approvals starts the workflow for each new pending identity.
    workflow = workflow_factory(approvals)
    approvals.workflow = workflow
    ingest = IngestService(
        settings=settings, repos=repos, blobs=blobs, recognition=recognition, approvals=approvals
    )
    customers = CustomerService(
        settings=settings, repos=repos, blobs=blobs, faces=faces, recognition=recognition
    )
    privacy = PrivacyService(
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
        extras=dict(extras or {}),
    )
