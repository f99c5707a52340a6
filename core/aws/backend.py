"""Builds the AWS backend: S3, DynamoDB, Rekognition, Step Functions, SES, IoT, Cognito.

Clients are built lazily by each adapter (region from ``STORELENS_AWS_REGION``,
endpoint from ``Settings.endpoint_for(service)``), or injected by keyword so
tests can pass moto- or Stubber-backed clients::

    build_services(settings, s3=s3, dynamodb=ddb, rekognition=stubbed, stepfunctions=sfn, ses=ses)

Other keywords: ``session`` (a ``boto3.session.Session`` used for every client
not given), ``iot_data``, ``cognito`` (a ``cognito-idp`` client for dashboard
sign-in), ``jwks_fetcher`` (for Cognito), and
``drive_workflow_inline`` (see :class:`core.aws.stepfunctions.StepFunctionsWorkflow`;
by default on exactly when a Step Functions endpoint override is set, i.e.
against an emulator that cannot run the stack's Lambdas).

``STORELENS_REKOGNITION_ENDPOINT_URL=local`` selects the embedded face index
instead of Rekognition: no emulator offers Rekognition collections, so this is
how live mode runs on a local moto server (see ``docs/aws.md``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.adapters import BackendAdapters
from core.errors import SettingsError
from core.ports import ApprovalCallbacks, FaceEmbedder, FaceIndex
from core.settings import Settings

#: ``STORELENS_REKOGNITION_ENDPOINT_URL`` value that selects the embedded face index.
LOCAL_FACE_INDEX = "local"
_KNOWN = {
    "s3",
    "dynamodb",
    "rekognition",
    "stepfunctions",
    "ses",
    "iot_data",
    "cognito",
    "session",
    "jwks_fetcher",
    "drive_workflow_inline",
    "face_index",
}


def build_aws(settings: Settings, **clients: Any) -> BackendAdapters:
    """The AWS adapters for :func:`core.bootstrap.build_services`."""
    unknown = sorted(set(clients) - _KNOWN)
    if unknown:
        raise TypeError(f"build_aws got unknown client(s) {unknown}; known: {sorted(_KNOWN)}")
    missing = [
        name
        for name, value in (
            ("STORELENS_S3_BUCKET", settings.s3_bucket),
            ("STORELENS_STATE_MACHINE_ARN", settings.state_machine_arn),
        )
        if not value
    ]
    if missing:
        raise SettingsError(f"the aws backend needs {' and '.join(missing)} (see docs/aws.md)")

    from core.analytics import RepositoryAnalytics
    from core.auth import Authenticator, CognitoAuthenticator, NoAuthenticator
    from core.aws.dynamodb import DynamoDbRepositories
    from core.aws.iot import IotDataPublisher
    from core.aws.rekognition import RekognitionFaceIndex
    from core.aws.s3 import S3BlobStore
    from core.aws.ses import SesNotifier
    from core.aws.stepfunctions import StepFunctionsWorkflow

    session = clients.get("session")
    region = settings.aws_region

    def common(service: str, key: str) -> dict[str, Any]:
        return {
            "client": clients.get(key),
            "session": session,
            "region": region,
            "endpoint_url": settings.endpoint_for(service),
        }

    repos = DynamoDbRepositories(
        prefix=settings.dynamodb_table_prefix,
        pending_ttl=timedelta(days=settings.pending_ttl_days),
        **common("dynamodb", "dynamodb"),
    )
    blobs = S3BlobStore(bucket=settings.s3_bucket, **common("s3", "s3"))
    # Typed, so the type checker holds each adapter to its port.
    faces: FaceIndex | None = clients.get("face_index")
    embedder: FaceEmbedder | None = None
    if faces is None and settings.rekognition_endpoint_url == LOCAL_FACE_INDEX:
        # Live mode on an emulator: moto has no Rekognition collections, so this
        # one port uses the embedded index (the only core.aws -> core.local link).
        from core.local.faces import LocalFaceIndex

        faces = embedder = LocalFaceIndex(settings.data_dir)
    if faces is None:
        faces = RekognitionFaceIndex(**common("rekognition", "rekognition"))
    notifier = SesNotifier(source=settings.ses_sender or None, **common("ses", "ses"))
    inline = clients.get("drive_workflow_inline")
    if inline is None:
        inline = bool(settings.endpoint_for("stepfunctions"))
    sfn = common("stepfunctions", "stepfunctions")

    def workflow_factory(callbacks: ApprovalCallbacks) -> StepFunctionsWorkflow:
        return StepFunctionsWorkflow(
            callbacks, state_machine_arn=settings.state_machine_arn, repos=repos, drive_inline=inline, **sfn
        )

    gallery_store = None
    if settings.edge_gallery:
        from core.gallery import BlobGallery

        gallery_store = BlobGallery(blobs)
    iot = common("iot", "iot_data")
    if not iot["endpoint_url"] and settings.iot_endpoint:
        # iot-data must be called on the account's own ATS endpoint.
        iot["endpoint_url"] = f"https://{settings.iot_endpoint.removeprefix('https://')}"
    authenticator: Authenticator
    verifier = None
    if settings.cognito_user_pool_id and settings.cognito_client_id:
        cognito = CognitoAuthenticator(
            settings, client=clients.get("cognito"), fetch_jwks=clients.get("jwks_fetcher")
        )
        authenticator, verifier = cognito, cognito.verifier
    else:
        authenticator = NoAuthenticator(
            "set STORELENS_COGNITO_USER_POOL_ID and STORELENS_COGNITO_CLIENT_ID to sign in"
        )
    return BackendAdapters(
        blobs=blobs,
        repos=repos,
        faces=faces,
        notifier=notifier,
        workflow=workflow_factory,
        # DynamoDB has no GROUP BY: aggregate the date range's rows in pandas.
        analytics=RepositoryAnalytics(repos, gap_seconds=settings.visit_gap_seconds),
        authenticator=authenticator,
        iot_publisher=IotDataPublisher(**iot),
        token_verifier=verifier,
        embedder=embedder,
        gallery_store=gallery_store,
    )
