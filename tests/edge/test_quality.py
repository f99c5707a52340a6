"""Crop quality: frontalness from landmarks, and the parts a crop's score is made of."""

from __future__ import annotations

import cv2
import numpy as np

from core.models import BoundingBox
from deeplens_lambda.quality import crop_quality, landmark_frontalness
from tests.support.photos import photo

FRONTAL = ((40.0, 50.0), (60.0, 50.0), (50.0, 60.0), (42.0, 70.0), (58.0, 70.0))
TURNED = ((40.0, 50.0), (60.0, 50.0), (57.0, 60.0), (45.0, 70.0), (60.0, 70.0))  # nose near one eye
PROFILE = ((40.0, 50.0), (46.0, 50.0), (38.0, 60.0), (40.0, 70.0), (45.0, 70.0))  # nose beyond both eyes


def test_frontalness_from_landmarks() -> None:
    assert landmark_frontalness(FRONTAL) == 1.0
    assert 0.0 < landmark_frontalness(TURNED) < 0.5
    assert landmark_frontalness(PROFILE) == 0.0
    assert landmark_frontalness(()) == 0.0


def test_quality_prefers_frontal_sharp_large_faces() -> None:
    image = cv2.imread(str(photo("obama")))
    h, w = image.shape[:2]
    box = BoundingBox(w // 4, h // 4, w // 2, h // 2)
    frontal = crop_quality(image, box, 0.9, FRONTAL)
    turned = crop_quality(image, box, 0.9, TURNED)
    blurred = crop_quality(cv2.GaussianBlur(image, (0, 0), 6), box, 0.9, FRONTAL)
    small = cv2.resize(image, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    tiny = crop_quality(small, BoundingBox(box.left // 5, box.top // 5, box.width // 5, box.height // 5), 0.9)
    assert frontal.total > turned.total and frontal.frontalness > turned.frontalness
    assert frontal.total > blurred.total and frontal.sharpness > blurred.sharpness
    assert frontal.size > tiny.size
    assert all(0.0 <= q.total <= 1.0 for q in (frontal, turned, blurred, tiny))
    assert crop_quality(np.zeros((100, 100, 3), np.uint8), BoundingBox(10, 10, 50, 50)).sharpness == 0.0
