"""IoT Core's 128 KB message limit: the edge refuses (and keeps) what cannot be sent,
and the largest event the edge may build fits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import PayloadTooLargeError
from core.models import MAX_CROPS_PER_EVENT, BoundingBox, FaceCrop, FaceEvent
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


def _v2_event(crops: int, crop_bytes: int) -> FaceEvent:
    """A schema-v2 event with ``crops`` crops of ``crop_bytes`` each and every field at its longest."""
    when = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
    box = BoundingBox(99999, 99999, 99999, 99999)
    marks = tuple((99999.123, 99999.123) for _ in range(5))
    return FaceEvent.from_crops(
        event_id=str(uuid.uuid4()),
        store_id="x" * 128,
        camera_id="x" * 128,
        zone="x" * 128,
        frame_width=99999,
        frame_height=99999,
        detector="x" * 128,
        track_id="x" * 128,
        crops=[FaceCrop(b"\xff" * crop_bytes, box, box, when, 0.9999, 0.9999, marks) for _ in range(crops)],
    )


def test_the_largest_event_the_edge_may_send_fits_iot_core() -> None:
    v1 = _event(_largest_crop_within(EDGE_EVENT_BUDGET))
    payload = event_to_json(v1)
    assert EDGE_EVENT_BUDGET - 4 <= len(payload) <= EDGE_EVENT_BUDGET <= MAX_IOT_PAYLOAD_BYTES
    check_payload_size(topic_for(v1.store_id, v1.camera_id), payload)  # does not raise
    # Schema v2 at its most crops: the metadata of MAX_CROPS_PER_EVENT crops leaves
    # most of the budget for JPEG bytes, and the fullest such event still fits.
    overhead = len(event_to_json(_v2_event(MAX_CROPS_PER_EVENT, 0)))
    assert overhead < EDGE_EVENT_BUDGET // 4, overhead
    per_crop = (EDGE_EVENT_BUDGET - overhead) // MAX_CROPS_PER_EVENT // 4 * 3
    fullest = event_to_json(_v2_event(MAX_CROPS_PER_EVENT, per_crop))
    assert EDGE_EVENT_BUDGET - 4 * MAX_CROPS_PER_EVENT <= len(fullest) <= EDGE_EVENT_BUDGET
    check_payload_size("storelens/s/c/faces", fullest)
    # One crop per event always fits: a single crop may use almost the whole budget.
    single = event_to_json(_v2_event(1, (EDGE_EVENT_BUDGET - overhead) // 4 * 3))
    check_payload_size("storelens/s/c/faces", single)
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
