"""FaceEvent schemas v1 and v2: JSON (de)serialisation and validation.

v2 (what the edge publishes) carries several crops of one tracked person; v1
(one crop) is still accepted. The wire format is documented in
``docs/face-event.md``. Parsing is strict:
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
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import (
    EventSchemaError,
    FaceTooSmallError,
    ImageDecodeError,
    PayloadTooLargeError,
    StoreLensError,
)
from core.models import MAX_CROPS_PER_EVENT, BoundingBox, FaceCrop, FaceEvent

#: The version this build writes; :data:`READABLE_VERSIONS` are those it accepts.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
DEFAULT_MAX_CROP_BYTES = 1_000_000
DEFAULT_MIN_FACE_PX = 40
#: AWS IoT Core's message size limit (128 KB): every serialised event an edge
#: sends over MQTT must fit (``deeplens_lambda.publishers``, ``core.aws.iot``).
MAX_IOT_PAYLOAD_BYTES = 128 * 1024
#: Largest crop, in pixels, that is decoded at all (a 2000x2000 crop is plenty).
DEFAULT_MAX_IMAGE_PIXELS = 4_000_000
#: Captured times before this are refused (no camera of ours ran earlier).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: Captured times may run ahead of this host's clock by at most this much.
MAX_CLOCK_SKEW = timedelta(days=1)
#: The longest span one anonymous sighting (one camera track) may claim.
MAX_SIGHTING = timedelta(hours=12)
#: Bound on pixel coordinates and sizes (far above any real frame).
MAX_PIXELS_SIDE = 100_000
# base64 grows data by 4/3; leave room for the other fields.
_MAX_DOCUMENT_OVERHEAD = 16_384

_Kinds = dict[str, type | tuple[type, ...]]

_FIELDS: _Kinds = {
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
_FIELDS_V2: _Kinds = {
    "event_id": str,
    "schema_version": int,
    "store_id": str,
    "camera_id": str,
    "zone": str,
    "frame": dict,
    "detector": str,
    "track_id": str,
    "crops": list,
}
_CROP_FIELDS: _Kinds = {
    "captured_at": str,
    "bbox": dict,
    "face": dict,
    "confidence": (int, float),
    "quality": (int, float),
    "jpeg_b64": str,
}
_CROP_OPTIONAL: _Kinds = {"landmarks": list}
#: v2's optional field: present on an anonymous sighting (``crops`` then empty).
_V2_OPTIONAL: _Kinds = {"sighting": dict}
_SIGHTING_FIELDS: _Kinds = {"first_seen_at": str, "last_seen_at": str}


def event_to_dict(event: FaceEvent) -> dict[str, Any]:
    """The JSON-ready dict of an event (v2 when it has ``crops`` or is anonymous, else v1)."""
    if event.is_anonymous:
        assert event.seen_until is not None
        return {
            "event_id": event.event_id,
            "schema_version": 2,
            "store_id": event.store_id,
            "camera_id": event.camera_id,
            "zone": event.zone,
            "frame": {"width": event.frame_width, "height": event.frame_height},
            "detector": event.detector,
            "track_id": event.track_id,
            "crops": [],
            "sighting": {
                "first_seen_at": _format_time(event.captured_at),
                "last_seen_at": _format_time(event.seen_until),
            },
        }
    if event.crops:
        return {
            "event_id": event.event_id,
            "schema_version": 2,
            "store_id": event.store_id,
            "camera_id": event.camera_id,
            "zone": event.zone,
            "frame": {"width": event.frame_width, "height": event.frame_height},
            "detector": event.detector,
            "track_id": event.track_id,
            "crops": [_crop_to_dict(crop) for crop in event.crops],
        }
    return {
        "event_id": event.event_id,
        "schema_version": 1,
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


def _crop_to_dict(crop: FaceCrop) -> dict[str, Any]:
    if crop.face is None:
        raise EventSchemaError("a v2 crop needs its face box in crop pixels")
    doc: dict[str, Any] = {
        "captured_at": _format_time(crop.captured_at),
        "bbox": crop.bbox.to_dict(),
        "face": crop.face.to_dict(),
        "confidence": round(float(crop.confidence), 4),
        "quality": round(float(crop.quality), 4),
    }
    if crop.landmarks is not None:
        doc["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in crop.landmarks]
    doc["jpeg_b64"] = base64.b64encode(crop.jpeg).decode("ascii")
    return doc


def event_to_json(event: FaceEvent) -> bytes:
    """Serialise an event to compact UTF-8 JSON bytes.

    ``EventSchemaError`` if the object holds values of the wrong type (a str or
    ``None`` crop, a naive time...), as built by hand through the Python API.
    """
    if not isinstance(event, FaceEvent):
        raise EventSchemaError(f"expected a FaceEvent, got {type(event).__name__}")
    try:
        return json.dumps(event_to_dict(event), separators=(",", ":")).encode("utf-8")
    except StoreLensError:
        raise
    except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        raise EventSchemaError(f"event has a field of the wrong type: {_short(exc)}") from exc


def parse_event(
    payload: bytes | str | dict[str, Any],
    *,
    max_crop_bytes: int = DEFAULT_MAX_CROP_BYTES,
    min_face_px: int = DEFAULT_MIN_FACE_PX,
    check_jpeg: bool = True,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> FaceEvent:
    """Parse and validate a schema v1 or v2 event from JSON bytes/str or a dict.

    ``max_crop_bytes`` bounds the decoded crops of one event together;
    ``min_face_px`` applies to every crop's face; ``max_image_pixels`` to
    every crop's declared size.
    """
    try:
        return _parse_event(payload, max_crop_bytes, min_face_px, check_jpeg, max_image_pixels)
    except StoreLensError:
        raise
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        # A last net for shapes the checks below did not foresee.
        raise EventSchemaError(f"event is malformed: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # describing the error must not fail (a 5000-digit int cannot print)
        text = ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _parse_event(
    payload: bytes | str | dict[str, Any],
    max_crop_bytes: int,
    min_face_px: int,
    check_jpeg: bool,
    max_image_pixels: int,
) -> FaceEvent:
    if not isinstance(payload, bytes | str | dict):
        raise EventSchemaError(f"event must be JSON bytes, text or an object, not {type(payload).__name__}")
    if isinstance(payload, dict):
        doc = payload
    else:
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        limit = max_crop_bytes * 4 // 3 + _MAX_DOCUMENT_OVERHEAD * 2
        if len(raw) > limit:
            raise PayloadTooLargeError(f"event document is {len(raw)} bytes; the limit is {limit}")
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventSchemaError(f"event is not valid JSON: {exc}") from exc
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise EventSchemaError(f"event holds an unreadable value: {_short(exc)}") from exc
        except RecursionError as exc:
            raise EventSchemaError("event is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise EventSchemaError("event must be a JSON object")

    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise EventSchemaError(
            f"unsupported schema_version {version!r}; this build reads "
            f"{' and '.join(str(v) for v in READABLE_VERSIONS)}"
        )
    if version == 2:
        _check_fields(doc, _FIELDS_V2, "", _V2_OPTIONAL)
    else:
        _check_fields(doc, _FIELDS, "")
    for name in ("store_id", "camera_id", "zone", "track_id", "detector"):
        if not doc[name].strip() or len(doc[name]) > 128:
            raise EventSchemaError(f"field {name!r} must be 1-128 characters")

    try:
        event_id = str(uuid.UUID(doc["event_id"]))
    except (ValueError, AttributeError) as exc:
        raise EventSchemaError(f"event_id {doc['event_id']!r} is not a UUID") from exc
    if version == 2:
        return _parse_v2(doc, event_id, max_crop_bytes, min_face_px, check_jpeg, max_image_pixels)
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
        check_jpeg_bytes(crop, max_image_pixels)

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


def _check_fields(doc: dict[str, Any], kinds: _Kinds, where: str, optional: _Kinds | None = None) -> None:
    """Refuse missing, unknown and mistyped fields of one JSON object."""
    optional = optional or {}
    missing = sorted(set(kinds) - set(doc))
    if missing:
        raise EventSchemaError(f"missing field(s){where}: {', '.join(missing)}")
    unknown = sorted(set(doc) - set(kinds) - set(optional))
    if unknown:
        raise EventSchemaError(f"unknown field(s){where}: {', '.join(unknown)}")
    for name, kind in {**kinds, **optional}.items():
        if name not in doc:
            continue
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise EventSchemaError(f"field {name!r}{where} has the wrong type ({type(value).__name__})")


def _parse_v2(
    doc: dict[str, Any],
    event_id: str,
    max_crop_bytes: int,
    min_face_px: int,
    check_jpeg: bool,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> FaceEvent:
    frame_w, frame_h = _parse_frame(doc["frame"])
    raw_crops = doc["crops"]
    if "sighting" in doc:
        return _parse_sighting(doc, event_id, frame_w, frame_h)
    if not 1 <= len(raw_crops) <= MAX_CROPS_PER_EVENT:
        raise EventSchemaError(f"crops must hold 1-{MAX_CROPS_PER_EVENT} crops, not {len(raw_crops)}")
    budget = max_crop_bytes
    crops: list[FaceCrop] = []
    for i, raw in enumerate(raw_crops):
        where = f" in crops[{i}]"
        if not isinstance(raw, dict):
            raise EventSchemaError(f"crops[{i}] must be a JSON object")
        _check_fields(raw, _CROP_FIELDS, where, _CROP_OPTIONAL)
        bbox = _parse_box(raw["bbox"])
        if bbox.right > frame_w or bbox.bottom > frame_h:
            raise EventSchemaError(f"bbox{where} {bbox.to_dict()} lies outside the {frame_w}x{frame_h} frame")
        if min(bbox.width, bbox.height) < min_face_px:
            raise FaceTooSmallError(
                f"face{where} is {bbox.width}x{bbox.height} px; the minimum is {min_face_px} px"
            )
        face = _parse_box(raw["face"])
        confidence = float(raw["confidence"])
        quality = float(raw["quality"])
        for name, value in (("confidence", confidence), ("quality", quality)):
            if not 0.0 <= value <= 1.0:
                raise EventSchemaError(f"{name}{where} {value} is outside 0..1")
        landmarks = _parse_landmarks(raw["landmarks"], where) if "landmarks" in raw else None
        crop = _decode_crop(raw["jpeg_b64"], budget, max_crop_bytes, where)
        budget -= len(crop)
        if check_jpeg:
            check_jpeg_bytes(crop, max_image_pixels)
        crops.append(
            FaceCrop(
                jpeg=crop,
                bbox=bbox,
                face=face,
                captured_at=_parse_time(raw["captured_at"]),
                confidence=confidence,
                quality=quality,
                landmarks=landmarks,
            )
        )
    return FaceEvent.from_crops(
        event_id=event_id,
        store_id=doc["store_id"],
        camera_id=doc["camera_id"],
        zone=doc["zone"],
        frame_width=frame_w,
        frame_height=frame_h,
        detector=doc["detector"],
        track_id=doc["track_id"],
        crops=crops,
    )


def _parse_sighting(doc: dict[str, Any], event_id: str, frame_w: int, frame_h: int) -> FaceEvent:
    """An anonymous sighting: a track the edge could not match; it must carry no crop."""
    if doc["crops"]:
        raise EventSchemaError("an anonymous sighting (field 'sighting') must have an empty 'crops'")
    sighting = doc["sighting"]
    _check_fields(sighting, _SIGHTING_FIELDS, " in sighting")
    first, last = _parse_time(sighting["first_seen_at"]), _parse_time(sighting["last_seen_at"])
    if last < first:
        raise EventSchemaError("sighting last_seen_at is before first_seen_at")
    if last - first > MAX_SIGHTING:
        raise EventSchemaError(f"a sighting may span at most {MAX_SIGHTING}, not {last - first}")
    return FaceEvent.anonymous(
        event_id=event_id,
        store_id=doc["store_id"],
        camera_id=doc["camera_id"],
        zone=doc["zone"],
        frame_width=frame_w,
        frame_height=frame_h,
        detector=doc["detector"],
        track_id=doc["track_id"],
        first_seen_at=first,
        last_seen_at=last,
    )


def _decode_crop(b64: str, budget: int, max_crop_bytes: int, where: str) -> bytes:
    if len(b64) > budget * 4 // 3 + 4:
        raise PayloadTooLargeError(f"crops exceed {max_crop_bytes} bytes together{where}")
    try:
        crop = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventSchemaError(f"jpeg_b64{where} is not valid base64") from exc
    if len(crop) > budget:
        raise PayloadTooLargeError(f"crops exceed {max_crop_bytes} bytes together{where}")
    return crop


def _parse_landmarks(raw: list[Any], where: str) -> tuple[tuple[float, float], ...]:
    points: list[tuple[float, float]] = []
    for point in raw:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
            or not all(-1e5 < float(v) < 1e5 for v in point)
        ):
            raise EventSchemaError(f"landmarks{where} must be a list of [x, y] numbers")
        points.append((float(point[0]), float(point[1])))
    if len(points) != 5:
        raise EventSchemaError(f"landmarks{where} must hold 5 points, not {len(points)}")
    return tuple(points)


def check_jpeg_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """Raise a :class:`ValidationError` unless ``data`` is a complete, intact JPEG of sane size.

    Checks the SOI/EOI markers (truncation), reads the declared size from the
    header and refuses more than ``max_pixels`` *before* decoding
    (``PayloadTooLargeError``: a small file can declare a huge image), then
    decodes fully with libjpeg-turbo in strict mode (``simplejpeg``), which
    turns every decoder warning -- "Corrupt JPEG data", premature end of a
    segment, bad Huffman codes -- into an error. Pillow and OpenCV only warn
    and return a damaged image.
    """
    if not isinstance(data, bytes | bytearray):
        raise EventSchemaError(f"crop must be bytes, not {type(data).__name__}")
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise ImageDecodeError("crop is not a JPEG (missing SOI marker)")
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ImageDecodeError("crop JPEG is truncated (missing EOI marker)")
    import simplejpeg

    try:
        height, width, _colorspace, _subsampling = simplejpeg.decode_jpeg_header(bytes(data))
    except ValueError as exc:
        raise ImageDecodeError(f"crop JPEG header is unreadable: {exc}") from exc
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"crop JPEG declares {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
            " (STORELENS_MAX_IMAGE_PIXELS)"
        )
    try:
        simplejpeg.decode_jpeg(bytes(data), strict=True)
    except ValueError as exc:
        raise ImageDecodeError(f"crop JPEG data is corrupt: {exc}") from exc


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise EventSchemaError("captured_at must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventSchemaError(f"captured_at {raw[:64]!r} is not ISO-8601") from exc
    if value.tzinfo is None:
        raise EventSchemaError(f"captured_at {raw[:64]!r} has no UTC offset")
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+05:00 lies before year 1 in UTC
        raise EventSchemaError(f"captured_at {raw[:64]!r} is out of range") from exc
    latest = datetime.now(UTC) + MAX_CLOCK_SKEW
    if not EARLIEST_TIME <= value <= latest:
        raise EventSchemaError(
            f"captured_at {raw[:64]!r} is outside {EARLIEST_TIME:%Y-%m-%d} .. now + 1 day"
            " (is the camera's clock set?)"
        )
    return value


def _parse_box(raw: dict[str, Any]) -> BoundingBox:
    keys = {"left", "top", "width", "height"}
    if set(raw) != keys or not all(
        isinstance(raw[k], int) and not isinstance(raw[k], bool) and abs(raw[k]) <= MAX_PIXELS_SIDE
        for k in keys
    ):
        raise EventSchemaError(
            f"bbox must have integer left, top, width, height (pixels, at most {MAX_PIXELS_SIDE})"
        )
    box = BoundingBox.from_dict(raw)
    if box.left < 0 or box.top < 0 or box.width <= 0 or box.height <= 0:
        raise EventSchemaError(f"bbox {raw} must have left, top >= 0 and positive size")
    return box


def _parse_frame(raw: dict[str, Any]) -> tuple[int, int]:
    if set(raw) != {"width", "height"} or not all(
        isinstance(raw[k], int) and not isinstance(raw[k], bool) and 0 < raw[k] <= MAX_PIXELS_SIDE
        for k in ("width", "height")
    ):
        raise EventSchemaError(
            f"frame must have positive integer width and height (at most {MAX_PIXELS_SIDE})"
        )
    return raw["width"], raw["height"]
