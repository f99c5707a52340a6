"""Face-crop quality: size, sharpness (variance of the Laplacian) and frontalness.

All scores are in ``0..1``; :func:`crop_quality` combines them. Frontalness
comes from the detector's five landmarks when it gives them (the nose sits
midway between the eyes and between the mouth corners on a frontal face, and
slides towards one side as the head turns), otherwise from the left/right
mirror symmetry of a 48x48 grey patch (a frontal face is nearly symmetric, a
profile is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.models import BoundingBox

#: A face this wide (pixels) or wider gets the full size score: the embedder's
#: 150 px chip holds the face at about 100 px, so larger faces add no detail.
FULL_SIZE_PX = 100
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


def landmark_frontalness(landmarks: tuple[tuple[float, float], ...] | list[tuple[float, float]]) -> float:
    """How frontal a face is from its five points (right eye, left eye, nose, right and left mouth corner).

    The ratio of the nose's horizontal distances to the two eyes (and to the two
    mouth corners) is 1 on a frontal face and falls to 0 as the nose reaches
    one side in a profile; eyes weigh more than the mouth, which moves when
    people talk.

    >>> landmark_frontalness([(40, 50), (60, 50), (50, 60), (42, 70), (58, 70)])
    1.0
    >>> landmark_frontalness([(40, 50), (60, 50), (58, 60), (42, 70), (58, 70)]) < 0.3
    True
    """
    if len(landmarks) < 5:
        return 0.0
    (rex, _), (lex, _), (nx, _), (rmx, _), (lmx, _) = landmarks[:5]

    def balance(a: float, b: float) -> float:
        left, right = nx - min(a, b), max(a, b) - nx
        if left <= 0 or right <= 0:
            return 0.0
        return min(left, right) / max(left, right)

    return round(0.7 * balance(rex, lex) + 0.3 * balance(rmx, lmx), 6)


def crop_quality(
    frame: np.ndarray,
    box: BoundingBox,
    confidence: float = 1.0,
    landmarks: tuple[tuple[float, float], ...] | None = None,
    patch: np.ndarray | None = None,
) -> Quality:
    """Score a face box in ``frame``: 0.4 size + 0.3 sharpness + 0.3 frontalness, times confidence.

    ``landmarks`` (frame pixels) give frontalness when present; ``patch`` is
    :func:`face_patch` of the box if the caller already has it.
    """
    if patch is None:
        patch = face_patch(frame, box)
    size = min(1.0, min(box.width, box.height) / FULL_SIZE_PX)
    sharp = sharpness(patch)
    if landmarks:
        front = landmark_frontalness(landmarks)
    else:
        front = frontalness(cv2.resize(patch, (48, 48), interpolation=cv2.INTER_AREA))
    total = (0.4 * size + 0.3 * sharp + 0.3 * front) * (0.5 + 0.5 * max(0.0, min(1.0, confidence)))
    return Quality(size, sharp, front, total)
