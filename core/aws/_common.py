"""Helpers shared by the AWS adapters: lazy clients and ClientError codes.

boto3 is imported inside functions so that ``import core.aws.s3`` (and the
local backend) never pays for it, and no client is built at import time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.errors import MissingDependencyError


def make_client(
    service: str,
    *,
    client: Any = None,
    session: Any = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """Return ``client`` or build one from ``session`` (default: a new boto3 session).

    >>> make_client("s3", client="given")
    'given'
    """
    if client is not None:
        return client
    if session is None:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - boto3 is a runtime dependency
            raise MissingDependencyError("the aws backend needs boto3: pip install boto3") from exc
        session = boto3.session.Session()
    kwargs: dict[str, Any] = {}
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if service == "s3":
        from botocore.config import Config

        # SigV4 presigned URLs (required for SSE-KMS objects and newer regions).
        kwargs["config"] = Config(
            signature_version="s3v4", s3={"addressing_style": "path"} if endpoint_url else {}
        )
    return session.client(service, **kwargs)


class AwsAdapter:
    """Base of the AWS adapters: one boto3 client, injected or built on first use.

    A subclass names its ``service`` and calls :meth:`_use_client` from its
    ``__init__`` with the ``client=``/``session=``/``region=``/``endpoint_url=``
    it was given; ``self.client`` is then built by :func:`make_client` only
    when first needed, so constructing an adapter never touches AWS.
    """

    service: ClassVar[str]

    def _use_client(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._client = client
        self._session = session
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        """The boto3 client (built on first use)."""
        if self._client is None:
            self._client = make_client(
                self.service, session=self._session, region=self._region, endpoint_url=self._endpoint_url
            )
        return self._client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return str(exc)
    return str(response.get("Error", {}).get("Message", "")) or str(exc)
