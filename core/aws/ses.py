"""SesNotifier: approval e-mails sent through Amazon SES as raw MIME.

The message is built once by :mod:`core.mail` (plain text + HTML with the face
crops inline as ``cid:`` parts and one signed link per action), so the outbox
and SES send byte-identical mail.

>>> SesNotifier(client=ses_client).send(mail)   # doctest: +SKIP
'0102018c...'
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from core.aws._common import AwsAdapter, error_code, error_message
from core.errors import BackendError, ValidationError
from core.ports import OutgoingMail


class SesNotifier(AwsAdapter):
    """Implements ``core.ports.Notifier`` with ``SendRawEmail``.

    ``source`` overrides the envelope sender (else the MIME ``From`` is used);
    it must be an SES-verified identity. ``configuration_set`` enables SES
    event publishing if the stack defines one.
    """

    service = "ses"

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        source: str | None = None,
        configuration_set: str | None = None,
    ) -> None:
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)
        self.source = source or None
        self.configuration_set = configuration_set

    def send(self, mail: OutgoingMail) -> str:
        """Send the MIME bytes to ``mail.to``; return SES's message id."""
        if not mail.to:
            raise ValidationError(f"mail about {mail.subject_id} has no recipients")
        params: dict[str, Any] = {"Destinations": list(mail.to), "RawMessage": {"Data": mail.mime}}
        if self.source:
            params["Source"] = self.source
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        try:
            resp = self.client.send_raw_email(**params)
        except ClientError as exc:
            if error_code(exc) in {
                "MessageRejected",
                "MailFromDomainNotVerifiedException",
                "ConfigurationSetDoesNotExist",
                "AccountSendingPausedException",
            }:
                raise BackendError(f"SES refused the approval mail: {error_message(exc)}") from exc
            raise
        return str(resp["MessageId"])

    def forget(self, subject_id: str) -> int:
        """SES keeps no copy StoreLens could delete; nothing to forget."""
        return 0
