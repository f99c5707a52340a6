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
from core.models import MAX_CROPS_PER_EVENT, BoundingBox, FaceCrop, FaceEvent
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
        ({"schema_version": 3}, "unsupported schema_version 3"),
        ({"schema_version": True}, "unsupported schema_version True"),
        ({"schema_version": 2}, "missing field\\(s\\): crops"),
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


# ------------------------------------------------------------------ schema v2


def _crop(i: int = 0, **kw: object) -> FaceCrop:
    base: dict[str, object] = dict(
        jpeg=_jpeg((100 + i, 110)),
        bbox=BoundingBox(100 + 4 * i, 80, 60, 70),
        face=BoundingBox(20, 20, 60, 70),
        captured_at=datetime(2026, 11, 23, 10, 0, i, tzinfo=UTC),
        confidence=round(0.9 - i / 100, 2),
        quality=round(0.8 - i / 100, 2),
        landmarks=((35.0, 45.5), (65.0, 45.0), (50.0, 60.0), (38.0, 75.0), (62.0, 75.0)),
    )
    base.update(kw)
    return FaceCrop(**base)  # type: ignore[arg-type]


def _event_v2(n: int = 3) -> FaceEvent:
    return FaceEvent.from_crops(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        camera_id="cam-1",
        zone="entrance",
        frame_width=640,
        frame_height=480,
        detector="yunet",
        track_id="cam-1-7",
        crops=[_crop(i) for i in range(n)],
    )


def test_v2_round_trip_keeps_every_crop() -> None:
    ev = _event_v2(3)
    doc = json.loads(event_to_json(ev))
    assert doc["schema_version"] == 2
    assert "crop_jpeg_b64" not in doc and "captured_at" not in doc
    assert [c["face"] for c in doc["crops"]] == [{"left": 20, "top": 20, "width": 60, "height": 70}] * 3
    parsed = parse_event(event_to_json(ev))
    assert parsed == ev
    # The flat fields are the best (first) crop's.
    assert parsed.crop_jpeg == ev.crops[0].jpeg and parsed.bbox == ev.crops[0].bbox
    assert parsed.captured_at == ev.crops[0].captured_at
    assert parsed.all_crops == ev.crops


def test_v1_event_has_one_crop_in_all_crops() -> None:
    ev = _event()
    (only,) = ev.all_crops
    assert only.jpeg == ev.crop_jpeg and only.bbox == ev.bbox and only.face is None


def _v2_doc(mutate: object) -> dict[str, object]:
    doc = event_to_dict(_event_v2(2))
    mutate(doc)  # type: ignore[operator]
    return doc


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda d: d.update(crops=[]), EventSchemaError, "crops must hold 1-"),
        (lambda d: d["crops"].extend(d["crops"] * 5), EventSchemaError, "crops must hold 1-"),
        (lambda d: d["crops"].__setitem__(1, "x"), EventSchemaError, "crops\\[1\\] must be a JSON object"),
        (lambda d: d["crops"][0].pop("face"), EventSchemaError, "missing field\\(s\\) in crops\\[0\\]: face"),
        (lambda d: d["crops"][1].update(extra=1), EventSchemaError, "unknown field\\(s\\) in crops\\[1\\]"),
        (
            lambda d: d["crops"][0].update(quality=2),
            EventSchemaError,
            "quality in crops.0. 2.0 is outside",
        ),
        (lambda d: d["crops"][0].update(landmarks=[[1, 2]]), EventSchemaError, "must hold 5 points"),
        (lambda d: d["crops"][0].update(landmarks=[[1, "a"]] * 5), EventSchemaError, "list of \\[x, y\\]"),
        (
            lambda d: d["crops"][1]["bbox"].update(width=30, height=30),
            FaceTooSmallError,
            "face in crops\\[1\\] is 30x30 px",
        ),
        (lambda d: d["crops"][1].update(jpeg_b64="@@"), EventSchemaError, "jpeg_b64 in crops\\[1\\]"),
        (lambda d: d.update(crop_jpeg_b64="x"), EventSchemaError, "unknown field\\(s\\): crop_jpeg_b64"),
    ],
)
def test_v2_errors_name_the_crop(mutate: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_event(_v2_doc(mutate))


def test_v2_crops_share_one_byte_budget() -> None:
    ev = _event_v2(MAX_CROPS_PER_EVENT)
    total = sum(len(c.jpeg) for c in ev.crops)
    assert parse_event(event_to_json(ev), max_crop_bytes=total).crops == ev.crops
    with pytest.raises(PayloadTooLargeError, match="together"):
        parse_event(event_to_json(ev), max_crop_bytes=total - 1)


def _sighting_event() -> FaceEvent:
    first = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    return FaceEvent.anonymous(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        camera_id="cam-entrance",
        zone="entrance",
        frame_width=1920,
        frame_height=1080,
        detector="yunet",
        track_id="cam-entrance-ab12cd-3",
        first_seen_at=first,
        last_seen_at=first.replace(second=4),
    )


def test_anonymous_sighting_round_trips_without_any_face() -> None:
    event = _sighting_event()
    doc = event_to_dict(event)
    assert doc["schema_version"] == 2 and doc["crops"] == []
    assert doc["sighting"] == {
        "first_seen_at": "2026-11-23T10:00:00.000Z",
        "last_seen_at": "2026-11-23T10:00:04.000Z",
    }
    assert "bbox" not in doc and "crop_jpeg_b64" not in doc
    back = parse_event(event_to_json(event))
    assert back.is_anonymous and back.all_crops == () and back.crop_jpeg == b""
    assert (back.captured_at, back.seen_until, back.track_id) == (
        event.captured_at,
        event.seen_until,
        event.track_id,
    )
    # Ordinary v1 and v2 events are unchanged and are not sightings.
    assert not parse_event(event_to_json(_event_v2())).is_anonymous and not _event().is_anonymous


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(crops=[event_to_dict(_event_v2(1))["crops"][0]]), "must have an empty 'crops'"),
        (lambda d: d["sighting"].pop("last_seen_at"), "missing field(s) in sighting: last_seen_at"),
        (lambda d: d["sighting"].update(extra=1), "unknown field(s) in sighting: extra"),
        (
            lambda d: d["sighting"].update(last_seen_at="2026-11-23T09:00:00Z"),
            "last_seen_at is before first_seen_at",
        ),
        (lambda d: d["sighting"].update(last_seen_at="2026-11-24T10:00:00Z"), "may span at most"),
        (lambda d: d.update(sighting="yesterday"), "field 'sighting' has the wrong type"),
    ],
)
def test_bad_sightings_are_refused(mutate: object, message: str) -> None:
    doc = event_to_dict(_sighting_event())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(EventSchemaError) as err:
        parse_event(doc)
    assert message in str(err.value)


def test_a_v2_event_without_crops_or_sighting_is_still_refused() -> None:
    doc = event_to_dict(_sighting_event())
    del doc["sighting"]
    with pytest.raises(EventSchemaError, match="crops must hold 1-"):
        parse_event(doc)
