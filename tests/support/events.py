"""Build real FaceEvents from photos, the way an edge agent would."""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image

from core.customers import CROP_MARGIN, crop_face
from core.models import BoundingBox, FaceCrop, FaceEvent

if TYPE_CHECKING:
    from core.local.faces import LocalFaceIndex


@lru_cache(maxsize=1)
def _detector() -> LocalFaceIndex:
    from core.local.faces import LocalFaceIndex

    return LocalFaceIndex(tempfile.mkdtemp(prefix="storelens-detector-"))


@lru_cache(maxsize=32)
def _detect(image: bytes) -> tuple[tuple[BoundingBox, float], ...]:
    return tuple((d.bbox, d.confidence) for d in _detector().detect_faces(image))


def make_event(
    image: bytes,
    *,
    face: int = 0,
    camera_id: str = "cam-entrance",
    zone: str = "entrance",
    store_id: str = "store-1",
    captured_at: datetime | None = None,
    event_id: str | None = None,
    track_id: str | None = None,
) -> FaceEvent:
    """A schema-v1 FaceEvent for the ``face``-th largest face of ``image`` (frame = whole photo).

    Each event is its own track unless ``track_id`` is given.
    """
    bbox, confidence = _detect(image)[face]
    with Image.open(io.BytesIO(image)) as img:
        width, height = img.size
    return FaceEvent(
        event_id=event_id or str(uuid.uuid4()),
        store_id=store_id,
        camera_id=camera_id,
        zone=zone,
        captured_at=captured_at or datetime.now(UTC),
        bbox=bbox.clip(width, height),
        frame_width=width,
        frame_height=height,
        detector="dlib-hog",
        confidence=min(1.0, max(0.0, confidence)),
        track_id=track_id or f"t-{uuid.uuid4().hex[:8]}",
        crop_jpeg=crop_face(image, bbox),
    )


def make_crop(
    image: bytes,
    *,
    face: int = 0,
    captured_at: datetime | None = None,
    quality: float = 0.8,
    degrade: Callable[[Image.Image], Image.Image] | None = None,
) -> tuple[FaceCrop, int, int]:
    """One v2 crop of the ``face``-th largest face of ``image``, and the frame's size.

    The crop is cut with the edge's margin; ``face`` is the detector's box in
    crop pixels (as the edge sends it). ``degrade`` changes the crop's pixels
    (blur, shrink and re-grow...) to make a poor frame of the same person; it
    must keep the crop's size so the face box stays true.
    """
    bbox, confidence = _detect(image)[face]
    with Image.open(io.BytesIO(image)) as img:
        rgb = img.convert("RGB")
    width, height = rgb.size
    frame_box = bbox.clip(width, height)
    cut = bbox.expand(CROP_MARGIN).clip(width, height)
    crop = rgb.crop((cut.left, cut.top, cut.right, cut.bottom))
    if degrade is not None:
        crop = degrade(crop)
        assert crop.size == (cut.width, cut.height), "degrade must keep the crop's size"
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=92)
    in_crop = BoundingBox(
        frame_box.left - cut.left, frame_box.top - cut.top, frame_box.width, frame_box.height
    )
    return (
        FaceCrop(
            jpeg=out.getvalue(),
            bbox=frame_box,
            face=in_crop,
            captured_at=captured_at or datetime.now(UTC),
            confidence=min(1.0, max(0.0, confidence)),
            quality=quality,
        ),
        width,
        height,
    )


def make_track_event(
    crops: Sequence[tuple[FaceCrop, int, int]],
    *,
    camera_id: str = "cam-entrance",
    zone: str = "entrance",
    store_id: str = "store-1",
    event_id: str | None = None,
    track_id: str | None = None,
) -> FaceEvent:
    """A schema-v2 event from :func:`make_crop` results (best first).

    The crops may come from photos of different sizes; the event's frame is
    the largest of them, which every crop's box fits in.
    """
    return FaceEvent.from_crops(
        event_id=event_id or str(uuid.uuid4()),
        store_id=store_id,
        camera_id=camera_id,
        zone=zone,
        frame_width=max(w for _c, w, _h in crops),
        frame_height=max(h for _c, _w, h in crops),
        detector="dlib-hog",
        track_id=track_id or f"t-{uuid.uuid4().hex[:8]}",
        crops=[c for c, _w, _h in crops],
    )
