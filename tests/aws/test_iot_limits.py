"""IoT Core's 128 KB message limit: the edge refuses (and keeps) what cannot be sent,
and the largest event the edge may build fits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import PayloadTooLargeError
from core.models import BoundingBox, FaceEvent
from core.schema import MAX_IOT_PAYLOAD_BYTES, event_to_json
from deeplens_lambda.publishers import MqttTransport, SpoolingPublisher, check_payload_size, topic_for
from deeplens_lambda.spool import Spool

#: The edge keeps every serialised event at or under this (recompressing crops and
#: splitting a track's crops over several events); issue 13 / the edge helper.
EDGE_EVENT_BUDGET = 120_000


def _event(crop: bytes, text: str = "x") -> FaceEvent:
    return FaceEvent(
        event_id=str(uuid.uuid4()),
        schema_version=1,
        store_id=text * 128,  # the schema's longest identifiers
        camera_id=text * 128,
        zone=text * 128,
        captured_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        bbox=BoundingBox(99999, 99999, 99999, 99999),
        frame_width=99999,
        frame_height=99999,
        detector=text * 128,
        confidence=0.9999,
        track_id=text * 128,
        crop_jpeg=crop,
    )


def _largest_crop_within(budget: int) -> bytes:
    """The longest crop whose worst-case event still serialises within ``budget``."""
    overhead = len(event_to_json(_event(b"")))
    return b"\xff" * ((budget - overhead) // 4 * 3)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, payload: bytes) -> None:
        check_payload_size(topic, payload)
        self.sent.append((topic, payload))

    def close(self) -> None:
        pass


def test_the_largest_event_the_edge_may_send_fits_iot_core() -> None:
    event = _event(_largest_crop_within(EDGE_EVENT_BUDGET))
    payload = event_to_json(event)
    assert EDGE_EVENT_BUDGET - 4 <= len(payload) <= EDGE_EVENT_BUDGET <= MAX_IOT_PAYLOAD_BYTES
    check_payload_size(topic_for(event.store_id, event.camera_id), payload)  # does not raise
    assert MAX_IOT_PAYLOAD_BYTES == 128 * 1024


def test_the_publisher_refuses_an_oversized_event_and_keeps_it(tmp_path: Path) -> None:
    transport = _Recorder()
    publisher = SpoolingPublisher(transport, Spool(tmp_path / "spool.db"))
    small = _event(b"\xff\xd8small\xff\xd9", "s")
    big = _event(_largest_crop_within(MAX_IOT_PAYLOAD_BYTES + 3000), "b")
    publisher.publish(big)
    publisher.publish(small)
    assert [len(p) for _, p in transport.sent] == [len(event_to_json(small))]  # the next one still goes
    assert publisher.dead_lettered == 1 and publisher.pending == 0
    kept = publisher.dead_letter_dir / f"{big.event_id}.json"
    assert kept.read_bytes() == event_to_json(big)
    publisher.close()


def test_an_oversized_spooled_message_does_not_block_the_queue(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.put("old-big", "storelens/s/c/faces", b"{" + b" " * MAX_IOT_PAYLOAD_BYTES + b"}")
    spool.put("next", "storelens/s/c/faces", b"{}")
    transport = _Recorder()
    publisher = SpoolingPublisher(transport, spool)
    assert publisher.drain() == 1
    assert [p for _, p in transport.sent] == [b"{}"]
    assert publisher.dead_lettered == 1 and (publisher.dead_letter_dir / "old-big.json").exists()
    publisher.close()


def test_mqtt_transport_refuses_before_connecting() -> None:
    transport = MqttTransport("127.0.0.1", 1)  # nothing listens: the size check comes first
    with pytest.raises(PayloadTooLargeError, match="at most 131072"):
        transport.send("storelens/s/c/faces", b"x" * (MAX_IOT_PAYLOAD_BYTES + 1))
