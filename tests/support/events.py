"""Build real FaceEvents from photos, the way an edge agent would."""

from __future__ import annotations

import io
import tempfile
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image

from core.customers import crop_face
from core.models import FaceEvent

if TYPE_CHECKING:
    from core.local.faces import LocalFaceIndex


@lru_cache(maxsize=1)
def _detector() -> LocalFaceIndex:
    from core.local.faces import LocalFaceIndex

    return LocalFaceIndex(tempfile.mkdtemp(prefix="storelens-detector-"))


def make_event(
    image: bytes,
    *,
    face: int = 0,
    camera_id: str = "cam-entrance",
    zone: str = "entrance",
    store_id: str = "store-1",
    captured_at: datetime | None = None,
    event_id: str | None = None,
    track_id: str = "t-1",
) -> FaceEvent:
    """A FaceEvent for the ``face``-th largest face of ``image`` (frame = whole photo)."""
    detections = _detector().detect_faces(image)
    det = detections[face]
    with Image.open(io.BytesIO(image)) as img:
        width, height = img.size
    return FaceEvent(
        event_id=event_id or str(uuid.uuid4()),
        store_id=store_id,
        camera_id=camera_id,
        zone=zone,
        captured_at=captured_at or datetime.now(UTC),
        bbox=det.bbox.clip(width, height),
        frame_width=width,
        frame_height=height,
        detector="dlib-hog",
        confidence=min(1.0, max(0.0, det.confidence)),
        track_id=track_id,
        crop_jpeg=crop_face(image, det.bbox),
    )
