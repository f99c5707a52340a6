"""Face-crop quality: size, sharpness (variance of the Laplacian) and frontalness.

All scores are in ``0..1``; :func:`crop_quality` combines them. Frontalness is
estimated without landmarks as the left/right mirror symmetry of the face
(a frontal face is nearly symmetric, a profile is not), which costs a few
microseconds on a 48x48 patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.models import BoundingBox

#: A face this tall (pixels) or taller gets the full size score.
FULL_SIZE_PX = 160
#: Laplacian variance (on a 64x64 grey patch) that counts as fully sharp.
FULL_SHARPNESS = 400.0


@dataclass(frozen=True, slots=True)
class Quality:
    """The parts of a crop's score and their weighted total."""

    size: float
    sharpness: float
    frontalness: float
    total: float


def face_patch(frame: np.ndarray, box: BoundingBox, side: int = 64) -> np.ndarray:
    """The face region of ``frame`` as a ``side`` x ``side`` grey patch."""
    h, w = frame.shape[:2]
    b = box.clip(w, h)
    if b.width < 2 or b.height < 2:
        return np.zeros((side, side), np.uint8)
    region = frame[b.top : b.bottom, b.left : b.right]
    if region.ndim == 3:
        region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    return cv2.resize(region, (side, side), interpolation=cv2.INTER_AREA)


def sharpness(patch: np.ndarray) -> float:
    """Variance of the Laplacian of a grey patch, scaled to 0..1."""
    var = float(cv2.Laplacian(patch, cv2.CV_32F).var())
    return min(1.0, var / FULL_SHARPNESS)


def frontalness(patch: np.ndarray) -> float:
    """Mirror symmetry of a grey face patch (correlation with its flip), 0..1."""
    a = patch.astype(np.float32)
    b = a[:, ::-1]
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= 1e-6:
        return 0.0
    return max(0.0, float((a * b).sum()) / denom)


def crop_quality(frame: np.ndarray, box: BoundingBox, confidence: float = 1.0) -> Quality:
    """Score a face box in ``frame``: 0.4 size + 0.3 sharpness + 0.3 frontalness, times confidence."""
    patch = face_patch(frame, box)
    size = min(1.0, min(box.width, box.height) / FULL_SIZE_PX)
    sharp = sharpness(patch)
    front = frontalness(cv2.resize(patch, (48, 48), interpolation=cv2.INTER_AREA))
    total = (0.4 * size + 0.3 * sharp + 0.3 * front) * (0.5 + 0.5 * max(0.0, min(1.0, confidence)))
    return Quality(size, sharp, front, total)
