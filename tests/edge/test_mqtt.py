"""MQTT publishing through the spool against a real mosquitto broker, across a broker restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from core.schema import parse_event
from deeplens_lambda.publishers import MqttTransport, SpoolingPublisher, TransportError, topic_for
from deeplens_lambda.spool import Spool
from tests.edge.helpers import Mosquitto, make_event

pytestmark = pytest.mark.mosquitto


class Subscriber:
    """A persistent-session QoS 2 subscriber that records every delivery (duplicates too)."""

    def __init__(self, port: int, topic: str = "storelens/#") -> None:
        self.received: list[str] = []
        self.topics: list[str] = []
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="storelens-test-sub", clean_session=False
        )
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                c.subscribe(topic, qos=2)

        def on_subscribe(*_: Any) -> None:
            self.subscribed.set()

        def on_disconnect(*_: Any) -> None:
            self.subscribed.clear()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            event = parse_event(msg.payload)
            with self._lock:
                self.received.append(event.event_id)
                self.topics.append(msg.topic)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        client.connect("127.0.0.1", port, keepalive=5)
        client.loop_start()
        self.client = client

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path):
    server = Mosquitto(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


def test_events_survive_a_broker_restart_exactly_once_and_in_order(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    assert sub.subscribed.wait(10)
    events = [make_event(i) for i in range(40)]
    publisher = SpoolingPublisher(
        MqttTransport("127.0.0.1", broker.port, retry_seconds=0.1, timeout=3.0), Spool(tmp_path / "spool.db")
    )
    try:
        for event in events[:15]:
            publisher.publish(event)
        assert publisher.pending == 0
        # Let the broker->subscriber leg go quiet first: this test is about the
        # edge's spool; QoS 2 hand-offs cut by a broker kill are the broker's business.
        sub.wait_for(15)
        time.sleep(0.5)  # the subscriber's PUBCOMPs reach the broker before it is killed

        broker.stop()  # the link goes down mid-stream
        for event in events[15:30]:
            publisher.publish(event)
        assert publisher.pending == 15  # all waiting on disk, none lost

        broker.start()
        assert sub.subscribed.wait(10)
        time.sleep(0.2)  # let the retry interval pass
        for event in events[30:]:
            publisher.publish(event)
        assert publisher.pending == 0
    finally:
        publisher.close(drain_timeout=10)
    sub.wait_for(len(events))
    time.sleep(0.5)  # any duplicate would arrive now
    sub.close()
    assert sub.received == [e.event_id for e in events]  # every event, once, in order
    assert set(sub.topics) == {topic_for("store-1", "cam-entrance")}


def test_transport_reports_a_dead_broker(tmp_path: Path) -> None:
    from tests.edge.helpers import free_port

    transport = MqttTransport("127.0.0.1", free_port(), retry_seconds=0.0, timeout=1.0)
    with pytest.raises(TransportError):
        transport.send("storelens/x", b"{}")
    transport.close()
