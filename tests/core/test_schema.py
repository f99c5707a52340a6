from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from PIL import Image

from core.errors import (
    EventSchemaError,
    FaceTooSmallError,
    ImageDecodeError,
    PayloadTooLargeError,
)
from core.models import BoundingBox, FaceEvent
from core.schema import event_to_dict, event_to_json, parse_event


def _jpeg(size: tuple[int, int] = (120, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 140, 120)).save(out, format="JPEG")
    return out.getvalue()


def _event(**kw: object) -> FaceEvent:
    base: dict[str, object] = dict(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        camera_id="cam-1",
        zone="entrance",
        captured_at=datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC),
        bbox=BoundingBox(100, 80, 90, 110),
        frame_width=640,
        frame_height=480,
        detector="dlib-hog",
        confidence=0.87,
        track_id="t-7",
        crop_jpeg=_jpeg(),
    )
    base.update(kw)
    return FaceEvent(**base)  # type: ignore[arg-type]


def _doc(**changes: object) -> dict[str, object]:
    doc = event_to_dict(_event())
    doc.update(changes)
    return doc


def test_round_trip_keeps_every_field() -> None:
    ev = _event()
    parsed = parse_event(event_to_json(ev))
    assert parsed == ev
    doc = json.loads(event_to_json(ev))
    assert doc["captured_at"] == "2026-11-23T10:00:00.123Z"
    assert doc["schema_version"] == 1
    assert doc["bbox"] == {"left": 100, "top": 80, "width": 90, "height": 110}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": 2}, "unsupported schema_version 2"),
        ({"event_id": "not-a-uuid"}, "is not a UUID"),
        ({"captured_at": "2026-11-23T10:00:00"}, "has no UTC offset"),
        ({"captured_at": "yesterday"}, "is not ISO-8601"),
        ({"confidence": 1.5}, "outside 0..1"),
        ({"confidence": True}, "wrong type"),
        ({"bbox": {"left": 0, "top": 0, "width": 50}}, "bbox must have"),
        ({"bbox": {"left": 600, "top": 0, "width": 90, "height": 90}}, "outside the 640x480 frame"),
        ({"frame": {"width": 0, "height": 480}}, "frame must have"),
        ({"camera_id": ""}, "must be 1-128 characters"),
        ({"crop_jpeg_b64": "@@@"}, "not valid base64"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_schema_errors_name_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(EventSchemaError, match=message):
        parse_event(_doc(**changes))


def test_missing_field_is_named() -> None:
    doc = _doc()
    del doc["zone"]
    with pytest.raises(EventSchemaError, match="missing field\\(s\\): zone"):
        parse_event(doc)


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(EventSchemaError, match="not valid JSON"):
        parse_event(b"{nope")
    with pytest.raises(EventSchemaError, match="must be a JSON object"):
        parse_event(b"[1, 2]")


def test_small_faces_are_refused() -> None:
    with pytest.raises(FaceTooSmallError, match="30x30 px; the minimum is 40 px"):
        parse_event(event_to_json(_event(bbox=BoundingBox(0, 0, 30, 30))))


def test_oversized_crop_is_refused() -> None:
    big = event_to_json(_event(crop_jpeg=b"\xff\xd8" + b"\0" * 2_000 + b"\xff\xd9"))
    with pytest.raises(PayloadTooLargeError):
        parse_event(big, max_crop_bytes=1_000)


def test_truncated_and_corrupt_jpegs_are_refused() -> None:
    good = _jpeg()
    with pytest.raises(ImageDecodeError, match="truncated"):
        parse_event(_doc(crop_jpeg_b64=base64.b64encode(good[: len(good) // 2]).decode()))
    with pytest.raises(ImageDecodeError, match="not a JPEG"):
        parse_event(_doc(crop_jpeg_b64=base64.b64encode(b"PNG....").decode()))
    corrupt = good[:2] + b"\x00" * 40 + good[42:]
    with pytest.raises(ImageDecodeError):
        parse_event(_doc(crop_jpeg_b64=base64.b64encode(corrupt).decode()))
