"""AWS IoT Core: the edge agent's MQTT configuration and an iot-data publisher.

The edge agent (``deeplens_lambda/``) owns the paho-mqtt publisher; this
module gives it the AWS IoT Core side: the account's ATS data endpoint, the
device's X.509 certificate, key and the Amazon root CA, and the topic the
stack's IoT rule listens on (``storelens/<store_id>/<camera_id>/faces``, the
same topic ``deeplens_lambda.publishers.topic_for`` builds; the rule selects
:data:`TOPIC_FILTER`). Cloud code and tests publish through the ``iot-data``
API with :class:`IotDataPublisher`.

>>> cfg = IotMqttConfig.from_dir("certs", endpoint="abc123-ats.iot.eu-west-1.amazonaws.com",
...                              client_id="cam-1", check_files=False)
>>> cfg.port, cfg.topic_for("store-1")
(8883, 'storelens/store-1/cam-1/faces')
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.aws._common import AwsAdapter, make_client
from core.errors import NotFoundError, SettingsError
from core.models import FaceEvent
from core.schema import MAX_IOT_PAYLOAD_BYTES

#: MQTT topic template (four levels); ``deeplens_lambda.publishers.topic_for`` builds the same.
TOPIC_TEMPLATE = "storelens/{store_id}/{camera_id}/faces"
#: The IoT rule's topic filter in infra/template.yaml (tests/aws/test_template_contract.py checks).
TOPIC_FILTER = "storelens/+/+/faces"
#: IoT Core caps an MQTT message at 128 KB (one constant: ``core.schema``).
MAX_MESSAGE_BYTES = MAX_IOT_PAYLOAD_BYTES


def topic_for(store_id: str, camera_id: str) -> str:
    """The topic a camera publishes its FaceEvents on."""
    return TOPIC_TEMPLATE.format(store_id=store_id, camera_id=camera_id)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest), as IoT rules apply it.

    >>> topic_matches("storelens/+/+/faces", "storelens/s1/cam-1/faces")
    True
    >>> topic_matches("storelens/+/faces", "storelens/s1/cam-1/faces")
    False
    """
    want, got = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(got) or (level != "+" and level != got[i]):
            return False
    return len(want) == len(got)


@dataclass(frozen=True)
class IotMqttConfig:
    """Everything an MQTT client needs to connect to AWS IoT Core with mutual TLS."""

    endpoint: str
    client_id: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    port: int = 8883
    keepalive: int = 60

    @classmethod
    def from_dir(
        cls, folder: Path | str, *, endpoint: str, client_id: str, check_files: bool = True
    ) -> IotMqttConfig:
        """Config from a folder holding ``certificate.pem.crt``, ``private.pem.key``
        and ``AmazonRootCA1.pem`` (the names the IoT console downloads)."""
        base = Path(folder)
        cfg = cls(
            endpoint=endpoint,
            client_id=client_id,
            cert_path=base / "certificate.pem.crt",
            key_path=base / "private.pem.key",
            ca_path=base / "AmazonRootCA1.pem",
        )
        if check_files:
            cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ``SettingsError``/``NotFoundError`` naming what is missing."""
        if not self.endpoint:
            raise SettingsError(
                "the IoT endpoint is empty; set STORELENS_IOT_ENDPOINT "
                "(aws iot describe-endpoint --endpoint-type iot:Data-ATS)"
            )
        for label, path in (
            ("certificate", self.cert_path),
            ("private key", self.key_path),
            ("root CA", self.ca_path),
        ):
            if not path.is_file():
                raise NotFoundError(f"IoT {label} not found at {path}")

    def topic_for(self, store_id: str) -> str:
        """This device's topic; the client id is the thing name, which is the camera id
        (the stack's IoT policy allows publishing only on the thing's own topic)."""
        return topic_for(store_id, self.client_id)

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ client context with the device certificate loaded."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile=str(self.cert_path), keyfile=str(self.key_path))
        return ctx

    def paho_kwargs(self) -> dict[str, Any]:
        """Arguments for paho: ``client.tls_set(**cfg.paho_kwargs()["tls"])`` then
        ``client.connect(cfg.endpoint, cfg.port, cfg.keepalive)``."""
        return {
            "client_id": self.client_id,
            "host": self.endpoint,
            "port": self.port,
            "keepalive": self.keepalive,
            "tls": {
                "ca_certs": str(self.ca_path),
                "certfile": str(self.cert_path),
                "keyfile": str(self.key_path),
                "tls_version": ssl.PROTOCOL_TLS_CLIENT,
            },
        }


def describe_data_endpoint(
    *, client: Any = None, session: Any = None, region: str | None = None, endpoint_url: str | None = None
) -> str:
    """The account's ``iot:Data-ATS`` endpoint host (``xxxx-ats.iot.<region>.amazonaws.com``)."""
    iot = make_client("iot", client=client, session=session, region=region, endpoint_url=endpoint_url)
    return str(iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"])


class IotDataPublisher(AwsAdapter):
    """Implements ``core.ports.EventPublisher`` with ``iot-data`` ``Publish`` (QoS 1).

    For cloud-side publishing and tests; a camera uses MQTT with :class:`IotMqttConfig`.
    """

    service = "iot-data"

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        qos: int = 1,
    ) -> None:
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)
        self.qos = qos
        self.published = 0

    def publish(self, event: FaceEvent) -> None:
        from core.errors import PayloadTooLargeError
        from core.schema import event_to_json

        payload = event_to_json(event)
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(
                f"event {event.event_id} is {len(payload)} bytes; IoT Core accepts {MAX_MESSAGE_BYTES}"
            )
        self.client.publish(topic=topic_for(event.store_id, event.camera_id), qos=self.qos, payload=payload)
        self.published += 1

    def close(self) -> None:
        """Nothing to release: iot-data is plain HTTPS."""
