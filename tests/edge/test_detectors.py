"""Detectors: awscam SSD result parsing (pure) and dlib HOG / Haar on a real photo."""

from __future__ import annotations

import numpy as np

from core.models import BoundingBox
from deeplens_lambda.detector_factory import create_detector
from deeplens_lambda.detectors import parse_awscam_ssd
from simulator.synth import compose, store_background


def test_awscam_ssd_parse_scales_input_pixels_to_the_frame() -> None:
    parsed = {
        "ssd": [
            {"label": 1, "prob": 0.92, "xmin": 30.0, "ymin": 60.0, "xmax": 90.0, "ymax": 150.0},
            {"label": 1, "prob": 0.30, "xmin": 0.0, "ymin": 0.0, "xmax": 10.0, "ymax": 10.0},  # too weak
            {"label": 3, "prob": 0.99, "xmin": 100.0, "ymin": 100.0, "xmax": 200.0, "ymax": 200.0},  # class 3
            {"label": 1, "prob": 0.75, "xmin": 280.0, "ymin": 250.0, "xmax": 330.0, "ymax": 320.0},  # edge
        ]
    }
    faces = parse_awscam_ssd(
        parsed,
        frame_width=1920,
        frame_height=1080,
        input_width=300,
        input_height=300,
        threshold=0.5,
        labels=[1],
    )
    assert [f.confidence for f in faces] == [0.92, 0.75]
    # x * 1920/300 = 6.4, y * 1080/300 = 3.6
    assert faces[0].bbox == BoundingBox(192, 216, 384, 324)
    # clipped to the frame
    assert faces[1].bbox.right == 1920 and faces[1].bbox.bottom == 1080
    assert parse_awscam_ssd({}, frame_width=10, frame_height=10) == []


def test_hog_finds_a_composited_face_at_half_resolution() -> None:
    frame, truth = compose(store_background(), [("grace", (320.0, 240.0), 170)])
    det = create_detector("hog", downscale=0.5)
    faces = det.detect(frame)
    assert len(faces) == 1
    ((_, expected),) = truth
    assert faces[0].bbox.iou(expected) > 0.5
    assert 0.0 < faces[0].confidence <= 1.0
    assert det.detect(np.zeros((480, 640, 3), np.uint8)) == []
