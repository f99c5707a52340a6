"""YuNet (yuface) on real photos: the package group photo, the walkway group photo, the scale rule."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.models import BoundingBox, DetectedFace
from deeplens_lambda import detectors
from deeplens_lambda.detector_factory import create_detector
from deeplens_lambda.detectors import (
    YUNET_MIN_FACE_PX,
    DetectorUnavailableError,
    SearchRegion,
    YuNetDetector,
    drop_crowns,
    suppress_overlaps,
    yunet_scale,
)
from tests.support.photos import photo

WALKWAY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "walkway"


def _check_landmarks(face: DetectedFace) -> None:
    assert face.landmarks is not None and len(face.landmarks) == 5
    b = face.bbox
    for x, y in face.landmarks:  # full-frame pixels, on the face
        assert b.left - 2 <= x <= b.right + 2 and b.top - 2 <= y <= b.bottom + 2
    (rex, rey), (lex, ley), (_nx, ny), (rmx, rmy), (lmx, lmy) = face.landmarks
    assert rex < lex and rmx < lmx  # as seen in the image
    assert max(rey, ley) < ny < min(rmy, lmy)  # eyes above the nose above the mouth


def test_finds_the_six_faces_of_the_package_group_photo() -> None:
    image = cv2.imread(str(photo("t1")))
    faces = create_detector("yunet").detect(image)
    assert len(faces) == 6
    assert all(f.confidence >= 0.8 for f in faces)
    for face in faces:
        _check_landmarks(face)
    assert [f.confidence for f in faces] == sorted((f.confidence for f in faces), reverse=True)


def test_finds_the_six_faces_of_the_walkway_group_photo() -> None:
    image = cv2.imread(str(WALKWAY / "multiface.jpg"))
    faces = YuNetDetector().detect(image)
    assert len(faces) == 6  # counted by eye: six people, faces 73-92 px wide
    assert all(70 <= f.bbox.width <= 100 for f in faces)
    for face in faces:
        _check_landmarks(face)
    boxes = [f.bbox for f in faces]
    assert all(a.iou(b) == 0.0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_the_input_scale_follows_from_the_smallest_face_to_find() -> None:
    assert yunet_scale(40) == pytest.approx(YUNET_MIN_FACE_PX / 40)
    assert yunet_scale(YUNET_MIN_FACE_PX) == 1.0 and yunet_scale(5) == 1.0  # never upscales
    assert YuNetDetector(min_face_px=80).scale == pytest.approx(YUNET_MIN_FACE_PX / 80)
    # The walkway group photo shrunk so its faces are ~45 px: asked for 40 px faces,
    # the detector finds all six; asked only for faces of 120 px and more, it scans
    # the frame so coarsely that these faces (~5 px there) are not found.
    image = cv2.imread(str(WALKWAY / "multiface.jpg"))
    small = cv2.resize(image, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)
    found = YuNetDetector(min_face_px=40).detect(small)
    assert len(found) == 6 and min(f.bbox.width for f in found) < 50
    assert len(YuNetDetector(min_face_px=120).detect(small)) < 6
    # The same faces in a 1080p frame and a 640x360 frame are found at the same
    # rule: the scale depends on the face size asked for, not on the frame size.
    big = np.zeros((1080, 1920, 3), np.uint8)
    big[200 : 200 + small.shape[0], 300 : 300 + small.shape[1]] = small
    assert len(YuNetDetector(min_face_px=40).detect(big)) == 6
    assert YuNetDetector().detect(np.zeros((360, 640, 3), np.uint8)) == []


def test_duplicate_and_crown_boxes_are_dropped() -> None:
    face = DetectedFace(BoundingBox(100, 100, 60, 75), 0.9)
    twin = DetectedFace(BoundingBox(112, 104, 62, 72), 0.6)  # the same face boxed twice
    crown = DetectedFace(BoundingBox(120, 50, 50, 60), 0.6)  # the top of the head of someone looking down
    neighbour = DetectedFace(BoundingBox(150, 110, 55, 70), 0.8)  # someone beside, partly overlapping
    behind = DetectedFace(BoundingBox(95, 20, 50, 60), 0.85)  # above, not overlapping: someone behind
    kept = drop_crowns(suppress_overlaps([face, neighbour, behind, twin, crown]))
    assert kept == [face, neighbour, behind]


def test_without_yuface_the_error_names_the_hog_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yuface", None)  # what an unsupported platform looks like
    detectors._yuface.cache_clear()
    try:
        with pytest.raises(DetectorUnavailableError, match="--detector hog"):
            create_detector("yunet")
    finally:
        detectors._yuface.cache_clear()
    assert create_detector("hog").name == "hog"


def _walkway_frame(index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(WALKWAY / "walkway-1080p.mp4"))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok
    return frame


@pytest.mark.parametrize("index", [0, 45, 90])
def test_regions_find_the_faces_a_full_pass_finds_there(index: int) -> None:
    frame = _walkway_frame(index)
    height, width = frame.shape[:2]
    detector = YuNetDetector()
    full = detector.detect(frame)
    assert len(full) >= 4
    regions = [SearchRegion(f.bbox.expand(1.0), float(f.bbox.width)) for f in full]
    found = detector.detect_regions(frame, regions)
    # Same pixels, same grid: the same faces at the same places (scores near 0.5 may flip).
    for face in full:
        if face.confidence >= 0.6:
            same = max(found, key=lambda f: face.bbox.iou(f.bbox))
            assert face.bbox.iou(same.bbox) > 0.8, face
            assert face.landmarks is not None and same.landmarks is not None
            for (ax, ay), (bx, by) in zip(face.landmarks, same.landmarks, strict=True):
                assert abs(ax - bx) <= 6 and abs(ay - by) <= 6  # 2 px of the scaled image
    assert len(found) <= len(full) + 1
    assert 0.0 < detector.region_cost(width, height, regions) < 0.6  # the point: fewer pixels


def test_a_region_without_a_face_finds_none() -> None:
    frame = _walkway_frame(45)
    detector = YuNetDetector()
    assert detector.detect_regions(frame, [SearchRegion(BoundingBox(0, 0, 300, 200), 60.0)]) == []
    assert detector.detect_regions(frame, []) == []
