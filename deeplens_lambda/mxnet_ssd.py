"""An MXNet SSD checkpoint as a face detector, off the device (the DeepLens model format).

A DeepLens model is an MXNet checkpoint: ``NAME-symbol.json`` + ``NAME-0000.params``
whose output is ``MultiBoxDetection``'s ``(batch, anchors, 6)`` array of
``[class_id, score, xmin, ymin, xmax, ymax]`` with corners as 0..1 fractions of
the input (class ``-1`` marks background and suppressed boxes).

MXNet is retired upstream and needs ``numpy<1.24``, so it cannot share an
environment with OpenCV >= 4.12 / numpy 2: it has its own requirements file
(``requirements-mxnet.txt``) and virtual environment. This module imports
only numpy at module level; ``mxnet`` is imported when a detector is built.
Resizing uses MXNet's own image ops, so OpenCV is not needed here.

>>> det = MXNetSSDDetector(prefix="models/faces", epoch=0, input_size=300)   # doctest: +SKIP
>>> det.detect(frame_bgr)                                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.models import BoundingBox, DetectedFace


def _from_ssd_corners(row: Sequence[float] | np.ndarray, width: int, height: int) -> BoundingBox:
    """Fractional SSD corners ``row[2:6]`` as a pixel box clipped to ``width`` x ``height``."""
    xmin, ymin, xmax, ymax = (float(v) for v in row[2:6])
    left = round(min(xmin, xmax) * width)
    top = round(min(ymin, ymax) * height)
    right = round(max(xmin, xmax) * width)
    bottom = round(max(ymin, ymax) * height)
    return BoundingBox(left, top, right - left, bottom - top).clip(width, height)


def parse_mxnet_detections(
    detections: np.ndarray,
    *,
    frame_width: int,
    frame_height: int,
    threshold: float = 0.5,
    class_ids: Iterable[int] | None = None,
) -> list[DetectedFace]:
    """Faces from one image's ``MultiBoxDetection`` rows (``N x 6``), best first.

    Rows with class ``-1`` (background / suppressed), a score under
    ``threshold``, a class not in ``class_ids`` (``None`` keeps every
    foreground class) or an empty box after clipping are dropped.
    """
    rows = np.asarray(detections, dtype=np.float64).reshape(-1, 6)
    wanted = None if class_ids is None else {int(c) for c in class_ids}
    faces: list[DetectedFace] = []
    for row in rows:
        cls = int(row[0])
        score = float(row[1])
        if cls < 0 or score < threshold or (wanted is not None and cls not in wanted):
            continue
        box = _from_ssd_corners(row, frame_width, frame_height)
        if box.area > 0:
            faces.append(DetectedFace(box, min(1.0, max(0.0, score))))
    faces.sort(key=lambda f: f.confidence, reverse=True)
    return faces


class MXNetSSDDetector:
    """Run an MXNet SSD checkpoint on CPU and return faces in frame pixels.

    ``mean``/``std`` normalise RGB input the way the checkpoint was trained
    (the MXNet SSD example uses mean ``(123, 117, 104)``, std 1).
    """

    name = "mxnet-ssd"

    def __init__(
        self,
        *,
        prefix: str | Path,
        epoch: int = 0,
        input_size: int = 300,
        threshold: float = 0.5,
        class_ids: Iterable[int] | None = None,
        mean: tuple[float, float, float] = (123.0, 117.0, 104.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        try:
            import mxnet as mx
        except ImportError as exc:
            from core.errors import MissingDependencyError

            raise MissingDependencyError(
                "the mxnet detector needs MXNet 1.9.1 in its own environment: "
                "pip install -r requirements-mxnet.txt (numpy<1.24)"
            ) from exc
        self._mx = mx
        self.input_size = int(input_size)
        self.threshold = float(threshold)
        self.class_ids = None if class_ids is None else [int(c) for c in class_ids]
        self._mean = mx.nd.array(mean).reshape((1, 3, 1, 1))
        self._std = mx.nd.array(std).reshape((1, 3, 1, 1))
        sym, args, auxs = mx.model.load_checkpoint(str(prefix), int(epoch))
        self._module = mx.mod.Module(symbol=sym, data_names=["data"], label_names=None, context=mx.cpu())
        shape = (1, 3, self.input_size, self.input_size)
        self._module.bind(for_training=False, data_shapes=[("data", shape)])
        self._module.set_params(args, auxs, allow_missing=False, allow_extra=True)

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        mx = self._mx
        height, width = frame.shape[:2]
        rgb = np.ascontiguousarray(frame[:, :, ::-1])  # BGR (OpenCV/awscam) -> RGB (MXNet models)
        resized = mx.image.imresize(mx.nd.array(rgb, dtype="uint8"), self.input_size, self.input_size)
        data = resized.astype("float32").transpose((2, 0, 1)).expand_dims(0)
        data = (data - self._mean) / self._std
        self._module.forward(mx.io.DataBatch([data]), is_train=False)
        out: Any = self._module.get_outputs()[0].asnumpy()
        return parse_mxnet_detections(
            out[0], frame_width=width, frame_height=height, threshold=self.threshold, class_ids=self.class_ids
        )
