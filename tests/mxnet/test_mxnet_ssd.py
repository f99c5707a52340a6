"""The MXNet SSD detector on a tiny checkpoint built here (MultiBoxPrior + MultiBoxDetection).

Runs only in the MXNet environment (numpy<1.24), as its own pytest invocation::

    python3.11 -m venv .venv-mxnet
    .venv-mxnet/bin/pip install -r requirements-mxnet.txt
    .venv-mxnet/bin/python -m pytest --noconftest -m mxnet tests/mxnet

The network: the 64x64 input is average-pooled to an 8x8 grid; each cell has
one square anchor (size 1/8) whose "face" logit is ``mean brightness / 16 - 8``
and whose box offsets are zero, so a bright block in the frame becomes a
detection on exactly that cell with a known score.
"""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from core.models import BoundingBox
from deeplens_lambda.mxnet_ssd import MXNetSSDDetector, parse_mxnet_detections

pytestmark = pytest.mark.mxnet

GRID = 8
INPUT = 64


def build_checkpoint(prefix: Path) -> None:
    """Write ``prefix-symbol.json`` and ``prefix-0000.params`` of the tiny SSD."""
    data = mx.sym.Variable("data")
    pooled = mx.sym.Pooling(
        data, kernel=(INPUT // GRID, INPUT // GRID), stride=(INPUT // GRID,) * 2, pool_type="avg", name="pool"
    )
    cls = mx.sym.Convolution(pooled, kernel=(1, 1), num_filter=2, name="cls")  # background, face
    loc = mx.sym.Convolution(pooled, kernel=(1, 1), num_filter=4, name="loc")
    anchors = mx.sym.contrib.MultiBoxPrior(pooled, sizes=[1.0 / GRID], ratios=[1.0], name="anchors")
    cls_prob = mx.sym.softmax(mx.sym.reshape(cls, shape=(0, 2, -1)), axis=1)
    loc_pred = mx.sym.flatten(mx.sym.transpose(loc, axes=(0, 2, 3, 1)))
    out = mx.sym.contrib.MultiBoxDetection(
        cls_prob, loc_pred, anchors, threshold=0.01, clip=True, nms_threshold=0.45, name="detection"
    )
    # Input arrives mean-subtracted with mean 0 (see the detector below), so raw 0..255 brightness.
    third = 1.0 / 3.0
    args = {
        "cls_weight": mx.nd.array(
            np.array([[0, 0, 0], [third / 16, third / 16, third / 16]], np.float32).reshape(2, 3, 1, 1)
        ),
        "cls_bias": mx.nd.array([0.0, -8.0]),
        "loc_weight": mx.nd.zeros((4, 3, 1, 1)),
        "loc_bias": mx.nd.zeros((4,)),
    }
    mx.model.save_checkpoint(str(prefix), 0, out, args, {})


@pytest.fixture
def detector_factory(tmp_path: Path):
    prefix = tmp_path / "tinyssd"
    build_checkpoint(prefix)
    assert (tmp_path / "tinyssd-symbol.json").exists() and (tmp_path / "tinyssd-0000.params").exists()

    def make(threshold: float = 0.5, class_ids: list[int] | None = None) -> MXNetSSDDetector:
        return MXNetSSDDetector(
            prefix=prefix,
            epoch=0,
            input_size=INPUT,
            threshold=threshold,
            class_ids=class_ids,
            mean=(0.0, 0.0, 0.0),
        )

    return make


def frame_with_block(value: int, row: int, col: int, width: int = 640, height: int = 480) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    cw, ch = width // GRID, height // GRID
    frame[row * ch : (row + 1) * ch, col * cw : (col + 1) * cw] = value
    return frame


def test_bright_block_becomes_a_face_in_frame_pixels(detector_factory) -> None:
    det = detector_factory()
    faces = det.detect(frame_with_block(255, row=2, col=5))
    assert len(faces) == 1
    # cell (2, 5) of an 8x8 grid on 640x480 = x 400..480, y 120..180
    assert faces[0].bbox.iou(BoundingBox(400, 120, 80, 60)) > 0.9
    assert faces[0].confidence > 0.99


def test_threshold_separates_weak_and_strong_scores(detector_factory) -> None:
    # brightness 136 -> logit 136/16 - 8 = 0.5 -> probability ~0.62
    frame = frame_with_block(136, row=6, col=1)
    weak = detector_factory(threshold=0.5).detect(frame)
    assert len(weak) == 1 and 0.55 < weak[0].confidence < 0.7
    assert weak[0].bbox.iou(BoundingBox(80, 360, 80, 60)) > 0.9
    assert detector_factory(threshold=0.7).detect(frame) == []
    assert detector_factory().detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_class_filter_and_two_faces(detector_factory) -> None:
    frame = frame_with_block(255, row=1, col=1)
    frame[360:420, 480:560] = 255  # cell (6, 6)
    faces = detector_factory(class_ids=[0]).detect(frame)
    assert len(faces) == 2
    assert detector_factory(class_ids=[1]).detect(frame) == []


def test_parse_mxnet_detections_converts_and_filters() -> None:
    rows = np.array(
        [
            [0, 0.90, 0.25, 0.50, 0.50, 1.00],
            [-1, 0.99, 0.0, 0.0, 0.5, 0.5],  # background / suppressed
            [0, 0.40, 0.0, 0.0, 0.5, 0.5],  # under the threshold
            [0, 0.80, 0.90, -0.10, 1.20, 0.20],  # partly outside: clipped
            [2, 0.95, 0.1, 0.1, 0.2, 0.2],  # another class
        ]
    )
    faces = parse_mxnet_detections(rows, frame_width=200, frame_height=100, threshold=0.5, class_ids=[0])
    assert [f.bbox for f in faces] == [BoundingBox(50, 50, 50, 50), BoundingBox(180, 0, 20, 20)]
    assert [f.confidence for f in faces] == [0.9, 0.8]
    assert len(parse_mxnet_detections(rows, frame_width=200, frame_height=100, threshold=0.5)) == 3
