"""FaceEvent schema v1: JSON (de)serialisation and validation.

The wire format is documented in ``docs/face-event.md``. Parsing is strict:
unknown fields, missing fields, wrong types, a bad UUID, a naive timestamp, a
crop over the size limit, a face under the minimum size or a crop that is not
a decodable JPEG all raise a :class:`~core.errors.ValidationError` subclass
with a message that names the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from core.errors import (
    EventSchemaError,
    FaceTooSmallError,
    ImageDecodeError,
    PayloadTooLargeError,
)
from core.models import BoundingBox, FaceEvent

SCHEMA_VERSION = 1
DEFAULT_MAX_CROP_BYTES = 1_000_000
DEFAULT_MIN_FACE_PX = 40
#: AWS IoT Core's message size limit (128 KB): every serialised event an edge
#: sends over MQTT must fit (``deeplens_lambda.publishers``, ``core.aws.iot``).
MAX_IOT_PAYLOAD_BYTES = 128 * 1024
# base64 grows data by 4/3; leave room for the other fields.
_MAX_DOCUMENT_OVERHEAD = 16_384

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "schema_version": int,
    "store_id": str,
    "camera_id": str,
    "zone": str,
    "captured_at": str,
    "bbox": dict,
    "frame": dict,
    "detector": str,
    "confidence": (int, float),
    "track_id": str,
    "crop_jpeg_b64": str,
}


def event_to_dict(event: FaceEvent) -> dict[str, Any]:
    """The JSON-ready dict of an event (schema v1)."""
    return {
        "event_id": event.event_id,
        "schema_version": event.schema_version,
        "store_id": event.store_id,
        "camera_id": event.camera_id,
        "zone": event.zone,
        "captured_at": _format_time(event.captured_at),
        "bbox": event.bbox.to_dict(),
        "frame": {"width": event.frame_width, "height": event.frame_height},
        "detector": event.detector,
        "confidence": round(float(event.confidence), 4),
        "track_id": event.track_id,
        "crop_jpeg_b64": base64.b64encode(event.crop_jpeg).decode("ascii"),
    }


def event_to_json(event: FaceEvent) -> bytes:
    """Serialise an event to compact UTF-8 JSON bytes."""
    return json.dumps(event_to_dict(event), separators=(",", ":")).encode("utf-8")


def parse_event(
    payload: bytes | str | dict[str, Any],
    *,
    max_crop_bytes: int = DEFAULT_MAX_CROP_BYTES,
    min_face_px: int = DEFAULT_MIN_FACE_PX,
    check_jpeg: bool = True,
) -> FaceEvent:
    """Parse and validate a schema-v1 event from JSON bytes/str or a dict."""
    if isinstance(payload, dict):
        doc = payload
    else:
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        limit = max_crop_bytes * 4 // 3 + _MAX_DOCUMENT_OVERHEAD
        if len(raw) > limit:
            raise PayloadTooLargeError(f"event document is {len(raw)} bytes; the limit is {limit}")
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventSchemaError(f"event is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EventSchemaError("event must be a JSON object")

    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise EventSchemaError(f"unsupported schema_version {version!r}; this build reads {SCHEMA_VERSION}")
    missing = sorted(set(_FIELDS) - set(doc))
    if missing:
        raise EventSchemaError(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise EventSchemaError(f"unknown field(s): {', '.join(unknown)}")
    for name, kind in _FIELDS.items():
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise EventSchemaError(f"field {name!r} has the wrong type ({type(value).__name__})")
    for name in ("store_id", "camera_id", "zone", "track_id", "detector"):
        if not doc[name].strip() or len(doc[name]) > 128:
            raise EventSchemaError(f"field {name!r} must be 1-128 characters")

    try:
        event_id = str(uuid.UUID(doc["event_id"]))
    except ValueError as exc:
        raise EventSchemaError(f"event_id {doc['event_id']!r} is not a UUID") from exc
    captured_at = _parse_time(doc["captured_at"])
    bbox = _parse_box(doc["bbox"])
    frame_w, frame_h = _parse_frame(doc["frame"])
    confidence = float(doc["confidence"])
    if not 0.0 <= confidence <= 1.0:
        raise EventSchemaError(f"confidence {confidence} is outside 0..1")
    if bbox.right > frame_w or bbox.bottom > frame_h:
        raise EventSchemaError(f"bbox {bbox.to_dict()} lies outside the {frame_w}x{frame_h} frame")
    if min(bbox.width, bbox.height) < min_face_px:
        raise FaceTooSmallError(f"face is {bbox.width}x{bbox.height} px; the minimum is {min_face_px} px")

    b64 = doc["crop_jpeg_b64"]
    if len(b64) > max_crop_bytes * 4 // 3 + 4:
        raise PayloadTooLargeError(f"crop exceeds {max_crop_bytes} bytes")
    try:
        crop = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventSchemaError("crop_jpeg_b64 is not valid base64") from exc
    if len(crop) > max_crop_bytes:
        raise PayloadTooLargeError(f"crop is {len(crop)} bytes; the limit is {max_crop_bytes}")
    if check_jpeg:
        check_jpeg_bytes(crop)

    return FaceEvent(
        event_id=event_id,
        store_id=doc["store_id"],
        camera_id=doc["camera_id"],
        zone=doc["zone"],
        captured_at=captured_at,
        bbox=bbox,
        frame_width=frame_w,
        frame_height=frame_h,
        detector=doc["detector"],
        confidence=confidence,
        track_id=doc["track_id"],
        crop_jpeg=crop,
        schema_version=version,
    )


def check_jpeg_bytes(data: bytes) -> None:
    """Raise :class:`ImageDecodeError` unless ``data`` is a complete JPEG.

    Checks the SOI/EOI markers (truncation) and then decodes fully with Pillow,
    which also catches corrupt entropy-coded data.
    """
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise ImageDecodeError("crop is not a JPEG (missing SOI marker)")
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ImageDecodeError("crop JPEG is truncated (missing EOI marker)")
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageDecodeError(f"crop JPEG does not decode: {exc}") from exc


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise EventSchemaError("captured_at must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventSchemaError(f"captured_at {raw!r} is not ISO-8601") from exc
    if value.tzinfo is None:
        raise EventSchemaError(f"captured_at {raw!r} has no UTC offset")
    return value.astimezone(UTC)


def _parse_box(raw: dict[str, Any]) -> BoundingBox:
    keys = {"left", "top", "width", "height"}
    if set(raw) != keys or not all(isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in keys):
        raise EventSchemaError("bbox must have integer left, top, width, height (pixels)")
    box = BoundingBox.from_dict(raw)
    if box.left < 0 or box.top < 0 or box.width <= 0 or box.height <= 0:
        raise EventSchemaError(f"bbox {raw} must have left, top >= 0 and positive size")
    return box


def _parse_frame(raw: dict[str, Any]) -> tuple[int, int]:
    if set(raw) != {"width", "height"} or not all(
        isinstance(raw[k], int) and not isinstance(raw[k], bool) and raw[k] > 0 for k in ("width", "height")
    ):
        raise EventSchemaError("frame must have positive integer width and height")
    return raw["width"], raw["height"]
