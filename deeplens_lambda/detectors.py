"""Face detectors, all returning core :class:`DetectedFace` in pixels.

:func:`deeplens_lambda.detector_factory.create_detector` builds one by name:

* ``hog`` (default off the device): dlib's HOG frontal face detector run on a
  downscaled grey frame; boxes are scaled back to the full frame.
* ``mxnet``: an MXNet SSD checkpoint (``NAME-symbol.json`` + ``NAME-0000.params``),
  see :mod:`deeplens_lambda.mxnet_ssd` (needs the separate MXNet environment).
* ``awscam``: the DeepLens on-device SSD via ``awscam.Model(...).parseResult``,
  see :mod:`deeplens_lambda.device`; its output is parsed here by the pure
  :func:`parse_awscam_ssd` so the parsing is tested off the device.

>>> det = DlibHogDetector(downscale=0.5)           # doctest: +SKIP
>>> det.detect(frame_bgr)                          # doctest: +SKIP
[DetectedFace(bbox=BoundingBox(left=..., ...), confidence=...)]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.models import BoundingBox, DetectedFace


@runtime_checkable
class Detector(Protocol):
    """Finds faces in one BGR frame (``H x W x 3`` uint8)."""

    name: str

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        """Faces in ``frame`` as pixel boxes of that frame, best first."""


# ------------------------------------------------------------------ conversions


def _from_dlib_rect(rect: Any, scale: float, width: int, height: int) -> BoundingBox:
    """A dlib rectangle found on a frame resized by ``scale``, in full-frame pixels."""
    inv = 1.0 / scale
    box = BoundingBox(
        round(rect.left() * inv),
        round(rect.top() * inv),
        round((rect.right() - rect.left()) * inv),
        round((rect.bottom() - rect.top()) * inv),
    )
    return box.clip(width, height)


def _from_corners(
    xmin: float, ymin: float, xmax: float, ymax: float, sx: float, sy: float, width: int, height: int
) -> BoundingBox:
    """Corner coordinates multiplied by (``sx``, ``sy``) as a clipped pixel box."""
    left = round(min(xmin, xmax) * sx)
    top = round(min(ymin, ymax) * sy)
    right = round(max(xmin, xmax) * sx)
    bottom = round(max(ymin, ymax) * sy)
    return BoundingBox(left, top, right - left, bottom - top).clip(width, height)


def parse_awscam_ssd(
    parsed: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    frame_width: int,
    frame_height: int,
    input_width: int = 300,
    input_height: int = 300,
    threshold: float = 0.5,
    labels: Iterable[int] | None = None,
    model_type: str = "ssd",
) -> list[DetectedFace]:
    """Faces from the dict ``awscam.Model.parseResult('ssd', ...)`` returns.

    The DeepLens SDK reports ``xmin/ymin/xmax/ymax`` in the *model input*
    pixels (e.g. 300x300); the DeepLens samples rescale them by
    ``frame / input``. ``prob`` is 0..1; ``labels`` keeps only those class ids
    (``None`` keeps all: the face model has one class).

    >>> parse_awscam_ssd({"ssd": [{"label": 1, "prob": 0.9, "xmin": 30, "ymin": 30,
    ...   "xmax": 60, "ymax": 90}]}, frame_width=600, frame_height=300)[0].bbox
    BoundingBox(left=60, top=30, width=60, height=60)
    """
    wanted = None if labels is None else set(labels)
    sx = frame_width / float(input_width)
    sy = frame_height / float(input_height)
    faces: list[DetectedFace] = []
    for obj in parsed.get(model_type, ()):
        prob = float(obj.get("prob", 0.0))
        if prob < threshold:
            continue
        if wanted is not None and int(obj.get("label", -1)) not in wanted:
            continue
        box = _from_corners(
            float(obj["xmin"]),
            float(obj["ymin"]),
            float(obj["xmax"]),
            float(obj["ymax"]),
            sx,
            sy,
            frame_width,
            frame_height,
        )
        if box.area > 0:
            faces.append(DetectedFace(box, min(1.0, max(0.0, prob))))
    faces.sort(key=lambda f: f.confidence, reverse=True)
    return faces


# -------------------------------------------------------------------- detectors


@functools.lru_cache(maxsize=1)
def _frontal_face_detector() -> Any:
    """dlib's HOG detector, built once per process (deserialising it takes about a second)."""
    import dlib  # heavy: only when a HOG detector is built

    return dlib.get_frontal_face_detector()


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal face detector on a downscaled frame.

    HOG finds faces of about 80 px and up in the image it scans, so with
    ``downscale=0.5`` faces must be about 160 px in the full frame; use
    ``upsample=1`` or a larger ``downscale`` for smaller faces (slower).
    Confidence is the SVM score squashed to 0..1 (``score / (1 + score)`` for
    positive scores, floored at 0.05) because the schema wants 0..1.
    """

    name = "hog"

    def __init__(self, *, downscale: float = 0.5, upsample: int = 0, min_score: float = 0.0) -> None:
        if not 0.05 <= downscale <= 1.0:
            raise ValueError("downscale must be in 0.05..1.0")
        self.downscale = float(downscale)
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self._detector = _frontal_face_detector()

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        import cv2

        height, width = frame.shape[:2]
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.downscale != 1.0:
            grey = cv2.resize(grey, None, fx=self.downscale, fy=self.downscale, interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(grey, self.upsample, self.min_score)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            box = _from_dlib_rect(rect, self.downscale, width, height)
            if box.area > 0:
                conf = max(0.05, score / (1.0 + score)) if score > 0 else 0.05
                faces.append(DetectedFace(box, float(min(1.0, conf))))
        faces.sort(key=lambda f: f.confidence, reverse=True)
        return faces
