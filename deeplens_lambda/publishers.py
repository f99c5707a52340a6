"""Publishers: how an edge agent hands FaceEvents to the pipeline.

All implement :class:`core.ports.EventPublisher` (``publish(event)``, ``close()``).

* :class:`InProcessPublisher` calls ``services.ingest.ingest`` directly (simulator,
  single-machine installs).
* :class:`SpoolingPublisher` writes every event to an on-disk :class:`Spool`
  first and then drains the spool, in order, through a :class:`Transport`:
  :class:`MqttTransport` (paho-mqtt: AWS IoT Core with X.509 certificates, or any
  broker) or ``GreengrassTransport`` in :mod:`deeplens_lambda.device`. While the
  link is down events wait in the spool; nothing is lost and, because every
  message is keyed by ``event_id``, nothing is sent twice by the edge (the
  backend's ingest is idempotent on ``event_id`` as a second line).

>>> pub = SpoolingPublisher(MqttTransport("127.0.0.1", 1883), Spool("spool.db"))  # doctest: +SKIP
>>> pub.publish(event); pub.close()                                             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.errors import BackendError, PayloadTooLargeError, ValidationError
from core.models import FaceEvent, IngestResult
from core.schema import MAX_IOT_PAYLOAD_BYTES, event_to_json
from deeplens_lambda.spool import Spool

log = logging.getLogger(__name__)


class TransportError(BackendError):
    """A message could not be delivered now (link down, no acknowledgement)."""


def topic_for(store_id: str, camera_id: str) -> str:
    """The IoT topic an edge camera publishes on: ``storelens/{store}/{camera}/faces``."""
    return f"storelens/{store_id}/{camera_id}/faces"


def check_payload_size(topic: str, payload: bytes, limit: int = MAX_IOT_PAYLOAD_BYTES) -> None:
    """Raise :class:`PayloadTooLargeError` if ``payload`` exceeds IoT Core's message limit.

    AWS IoT Core drops (and disconnects on) messages over 128 KB; the edge keeps
    each event under it (one crop per event always fits), so an oversized
    payload is a bug to surface, never something to retry.
    """
    if len(payload) > limit:
        raise PayloadTooLargeError(
            f"message for {topic} is {len(payload)} bytes; AWS IoT Core accepts at most {limit}"
        )


class Transport(Protocol):
    """Delivers one message; returns only once delivery is confirmed."""

    def send(self, topic: str, payload: bytes) -> None:
        """Raise :class:`TransportError` if the message was not confirmed delivered."""

    def close(self) -> None: ...


# ------------------------------------------------------------------ in-process


@dataclass
class InProcessPublisher:
    """Publish straight into ``services.ingest`` (same process).

    A rejected event (``ValidationError``) is counted, not raised: ingest has
    already written a dead letter for it and the camera loop must go on.
    """

    ingest: Any  # core.ingest.IngestService
    source: str = "edge"
    on_result: Callable[[IngestResult], None] | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: int = 0

    def publish(self, event: FaceEvent) -> None:
        try:
            result = self.ingest.ingest(event, source=self.source)
        except ValidationError as exc:
            self.rejected += 1
            log.warning("event %s rejected by ingest: %s", event.event_id, exc)
            return
        self.outcomes[str(result.outcome)] += 1
        if self.on_result is not None:
            self.on_result(result)

    def close(self) -> None:
        """Nothing to release."""


# ------------------------------------------------------------------------ MQTT


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """X.509 material for AWS IoT Core (or any TLS broker)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class MqttTransport:
    """Send messages with paho-mqtt and wait for the broker's PUBACK.

    ``send`` is synchronous: it returns once the broker acknowledged (QoS 1),
    otherwise it drops the connection and raises :class:`TransportError`. A
    failed connection is retried at most every ``retry_seconds`` so an outage
    does not slow the camera loop. The paho network loop runs in the caller's
    thread (no ``loop_start``) and every reconnect uses a fresh client, so paho
    never re-sends a message on its own behind the spool's back: with a
    background loop, paho's reconnect logic re-publishes in-flight messages
    right after CONNACK, which duplicates them.

    For AWS IoT Core: ``MqttTransport(endpoint, 8883, tls=TlsFiles(ca, cert, key),
    client_id=thing_name)``.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        client_id: str | None = None,
        tls: TlsFiles | None = None,
        qos: int = 1,
        keepalive: int = 30,
        timeout: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.client_id = client_id or f"storelens-edge-{int(time.time() * 1000) % 10**9}"
        self.tls = tls
        self.qos = qos
        self.keepalive = keepalive
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._client: Any = None
        self._connected = False
        self._last_attempt = float("-inf")
        self._last_io = 0.0

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        now = time.monotonic()
        if now - self._last_attempt < self.retry_seconds:
            raise TransportError(f"MQTT broker {self.host}:{self.port} is down; retrying later")
        self._last_attempt = now
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        if self.tls is not None:
            import ssl  # here: ~10-15 ms that an in-process replay never needs

            client.tls_set(
                ca_certs=str(self.tls.ca_file),
                certfile=str(self.tls.cert_file),
                keyfile=str(self.tls.key_file),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            self._connected = not reason.is_failure

        def on_disconnect(_c: Any, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
            self._connected = False

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        self._connected = False
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive)
        except OSError as exc:
            raise TransportError(f"cannot connect to MQTT broker {self.host}:{self.port}: {exc}") from exc
        deadline = time.monotonic() + self.timeout
        while not self._connected and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        if not self._connected:
            self._drop(client)
            raise TransportError(f"MQTT broker {self.host}:{self.port} did not accept the connection")
        self._last_io = time.monotonic()
        return client

    def _drop(self, client: Any) -> None:
        with contextlib.suppress(Exception):  # already gone; we only want the socket closed
            client.disconnect()
            client.loop(timeout=0.01)
        if client is self._client:
            self._client = None
        self._connected = False

    def send(self, topic: str, payload: bytes) -> None:
        import paho.mqtt.client as mqtt

        check_payload_size(topic, payload)  # not a TransportError: retrying cannot help
        stale = time.monotonic() - self._last_io > self.keepalive * 0.8  # the broker may have dropped us
        if self._client is not None and (stale or not self._connected):
            self._drop(self._client)
        if self._client is None:
            self._client = self._connect()
        client = self._client
        try:
            info = client.publish(topic, payload, qos=self.qos)
            deadline = time.monotonic() + self.timeout
            while not info.is_published() and time.monotonic() < deadline:
                if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
            ok = info.is_published()
        except (RuntimeError, ValueError, OSError) as exc:
            self._drop(client)
            raise TransportError(f"publish to {topic} failed: {exc}") from exc
        if not ok:
            self._drop(client)
            raise TransportError(f"no acknowledgement for a message to {topic}")
        self._last_io = time.monotonic()

    def close(self) -> None:
        if self._client is not None:
            self._drop(self._client)


# --------------------------------------------------------------------- spooling


class SpoolingPublisher:
    """Spool first, then deliver in order through ``transport``; survives outages.

    ``publish`` never raises for a link failure: the event stays in the spool
    and goes out, in order, on a later ``publish``/``drain``/``close``.
    """

    def __init__(
        self, transport: Transport, spool: Spool, *, topic: str | None = None, batch: int = 100
    ) -> None:
        self.transport = transport
        self.spool = spool
        self.topic = topic
        self.batch = batch
        self.sent = 0
        self.failures = 0
        self.dead_lettered = 0

    def publish(self, event: FaceEvent) -> None:
        topic = self.topic or topic_for(event.store_id, event.camera_id)
        payload = event_to_json(event)
        try:
            check_payload_size(topic, payload)
        except PayloadTooLargeError as exc:
            self._dead_letter(event.event_id, payload, exc)
            return
        self.spool.put(event.event_id, topic, payload)
        self.drain()

    @property
    def dead_letter_dir(self) -> Path:
        """Where messages that can never be sent are kept (next to the spool file)."""
        return self.spool.path.parent / "dead-letters"

    def _dead_letter(self, key: str, payload: bytes, exc: Exception) -> None:
        """Keep an undeliverable message on disk and say so loudly; never drop it silently."""
        self.dead_lettered += 1
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        path = self.dead_letter_dir / f"{key}.json"
        path.write_bytes(payload)
        log.error("event %s not sent: %s; kept in %s", key, exc, path)

    def drain(self) -> int:
        """Send what the spool holds, oldest first, until empty or the link fails."""
        sent = 0
        while True:
            items = self.spool.peek(self.batch)
            if not items:
                return sent
            for item in items:
                try:
                    self.transport.send(item.topic, item.payload)
                except PayloadTooLargeError as exc:  # spooled by an older build: never sendable
                    self._dead_letter(item.key, item.payload, exc)
                    self.spool.ack(item)
                    continue
                except TransportError as exc:
                    self.failures += 1
                    log.info("spooled %d message(s); link down: %s", len(self.spool), exc)
                    return sent
                self.spool.ack(item)
                sent += 1
                self.sent += 1

    @property
    def pending(self) -> int:
        """Messages waiting in the spool."""
        return len(self.spool)

    def close(self, drain_timeout: float = 0.0) -> None:
        """Try to empty the spool (for up to ``drain_timeout`` seconds), then release."""
        deadline = time.monotonic() + drain_timeout
        self.drain()
        while len(self.spool) and time.monotonic() < deadline:
            time.sleep(0.2)
            self.drain()
        self.transport.close()
        self.spool.close()
