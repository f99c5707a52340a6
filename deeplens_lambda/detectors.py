"""Face detectors, all returning core :class:`DetectedFace` in pixels.

:func:`deeplens_lambda.detector_factory.create_detector` builds one by name:

* ``yunet`` (default off the device): libfacedetection's YuNet CNN through the
  PyPI package ``yuface`` (weights compiled into the wheel); boxes, scores and
  five landmarks. Its input scale follows from the smallest face to find
  (:func:`yunet_scale`), not from a fixed factor.
* ``hog`` (fallback): dlib's HOG frontal face detector run on a downscaled grey
  frame; boxes are scaled back to the full frame.
* ``mxnet``: an MXNet SSD checkpoint (``NAME-symbol.json`` + ``NAME-0000.params``),
  see :mod:`deeplens_lambda.mxnet_ssd` (needs the separate MXNet environment).
* ``awscam``: the DeepLens on-device SSD via ``awscam.Model(...).parseResult``,
  see :mod:`deeplens_lambda.device`; its output is parsed here by the pure
  :func:`parse_awscam_ssd` so the parsing is tested off the device.

>>> det = YuNetDetector(min_face_px=40)             # doctest: +SKIP
>>> det.detect(frame_bgr)                          # doctest: +SKIP
[DetectedFace(bbox=BoundingBox(left=..., ...), confidence=...)]
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import StoreLensError
from core.models import BoundingBox, DetectedFace

#: The detector used off the device when none is named.
DEFAULT_DETECTOR = "yunet"
#: Smallest face (camera pixels) the edge looks for by default (``STORELENS_MIN_FACE_PX``).
DEFAULT_MIN_FACE_PX = 40
#: Smallest face, in the pixels YuNet sees, that it finds reliably. Measured with
#: ``yuface`` 2023.5.1 (bench/edge.py prints it again): on multiface.jpg scaled so
#: its six faces are 20/16/14/12/10 px wide, all six are found at >= 0.86
#: confidence down to 16 px, >= 0.80 at 14 px, 0.71-0.84 at 12 px, and at 10 px
#: false boxes pass 0.5. On walkway frames, the recall of faces >= 40 px (against
#: boxes found at three or more scales) is 0.95-0.97 at 20, 16, 14 and 12 px and
#: falls to 0.89 at 10 px. 14 px keeps a margin above both knees.
YUNET_MIN_FACE_PX = 14


@runtime_checkable
class Detector(Protocol):
    """Finds faces in one BGR frame (``H x W x 3`` uint8)."""

    name: str

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        """Faces in ``frame`` as pixel boxes of that frame, best first."""


class DetectorUnavailableError(StoreLensError, RuntimeError):
    """A detector's package cannot be imported here (the message names the fallback)."""


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


def resize_for_detection(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale`` < 1, anti-aliased, in about 2 ms for a 1080p frame.

    OpenCV's area interpolation is exact but takes ~25 ms on a 1080p frame at a
    non-integer factor, and linear interpolation alone aliases at factors
    above 2; area-averaging by the integer part of the factor (a fast path),
    then linear for the rest (< 2x) gives nearly the same image for ~1/10 of
    the cost.
    """
    import cv2

    height, width = image.shape[:2]
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    step = int(1.0 / scale)
    if step >= 2:
        image = cv2.resize(image, (width // step, height // step), interpolation=cv2.INTER_AREA)
    if image.shape[1] != target[0] or image.shape[0] != target[1]:
        image = cv2.resize(image, target, interpolation=cv2.INTER_LINEAR)
    return image


def yunet_scale(min_face_px: int, reliable_px: int = YUNET_MIN_FACE_PX) -> float:
    """The input scale at which a ``min_face_px`` face is still ``reliable_px`` wide for YuNet.

    Never upscales: at ``min_face_px <= reliable_px`` the frame is used as is.

    >>> yunet_scale(40), yunet_scale(70), yunet_scale(10)
    (0.35, 0.2, 1.0)
    """
    if min_face_px < 1:
        raise ValueError("min_face_px must be positive")
    return min(1.0, reliable_px / float(min_face_px))


@functools.lru_cache(maxsize=1)
def _yuface() -> Any:
    try:
        import yuface
    except ImportError as exc:  # no wheel for this Python / platform
        raise DetectorUnavailableError(
            f"the yunet detector needs the 'yuface' package (pip install yuface==2023.5.1; wheels for "
            f"CPython 3.6-3.11 on x86-64), which cannot be imported here ({exc}); use --detector hog"
        ) from exc
    return yuface


class YuNetDetector:
    """libfacedetection's YuNet via ``yuface``: boxes, 0..1 scores and five landmarks.

    The frame is resized by :func:`yunet_scale` of ``min_face_px`` (camera
    pixels), so a 1080p and a 640x360 stream both find faces of that size
    without flags, and larger frames cost no more than they need. ``scale``
    overrides it. Boxes and landmarks come back in full-frame pixels; landmarks
    are right eye, left eye, nose tip, right and left mouth corner (as seen).
    """

    name = "yunet"

    def __init__(
        self, *, min_face_px: int = DEFAULT_MIN_FACE_PX, threshold: float = 0.5, scale: float | None = None
    ) -> None:
        self.min_face_px = int(min_face_px)
        self.scale = float(scale) if scale is not None else yunet_scale(self.min_face_px)
        if not 0.05 <= self.scale <= 1.0:
            raise ValueError("scale must be in 0.05..1.0")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in 0..1")
        self.threshold = float(threshold)
        self._yuface = _yuface()

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        import cv2

        height, width = frame.shape[:2]
        image = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.scale != 1.0:
            image = resize_for_detection(image, self.scale)
        image = np.ascontiguousarray(image, dtype=np.uint8)
        with warnings.catch_warnings():  # yuface warns above 960 px; the scale is chosen on purpose
            warnings.simplefilter("ignore", UserWarning)
            confs, boxes, points = self._yuface.detect(image, conf=self.threshold)
        inv = 1.0 / self.scale
        faces: list[DetectedFace] = []
        for conf, (x, y, w, h), pts in zip(
            confs, boxes.astype(np.int64), points.astype(np.float64), strict=True
        ):
            box = _from_corners(float(x), float(y), float(x + w), float(y + h), inv, inv, width, height)
            if box.area <= 0:
                continue
            marks = tuple((float(pts[2 * i]) * inv, float(pts[2 * i + 1]) * inv) for i in range(5))
            faces.append(DetectedFace(box, min(1.0, float(conf) / 100.0), marks))
        faces.sort(key=lambda f: f.confidence, reverse=True)
        return drop_crowns(suppress_overlaps(faces))


#: Two boxes overlapping more than this (IoU) are one face: the nearer of two
#: people would hide the other's face. YuNet's own suppression lets through
#: pairs at IoU 0.35-0.6 (seen on the walkway clip, one at 0.6 confidence).
MAX_FACE_OVERLAP = 0.3


def suppress_overlaps(faces: list[DetectedFace], max_iou: float = MAX_FACE_OVERLAP) -> list[DetectedFace]:
    """Greedy non-maximum suppression (``faces`` best first): keep a box unless it overlaps a kept one."""
    kept: list[DetectedFace] = []
    for face in faces:
        if all(face.bbox.iou(k.bbox) <= max_iou for k in kept):
            kept.append(face)
    return kept


def _on_forehead(crown: BoundingBox, face: BoundingBox) -> bool:
    """Whether ``crown`` overlaps ``face`` and is centred above its top (within 15 % of its height)."""
    cx, cy = crown.center
    overlaps = crown.iou(face) > 0.0
    return overlaps and face.left <= cx <= face.right and cy < face.top + 0.15 * face.height


def drop_crowns(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Drop boxes that sit on the forehead of a more confident face (``faces`` best first).

    When someone looks down, YuNet often reports the top of their head as a
    second, weaker face that overlaps the real one from above (seen on the
    walkway clip at 0.5-0.77 confidence). A real face cannot be centred on
    another face's forehead and overlap it (it would be hidden by that head),
    so such a box is the same head and is dropped; faces side by side, or a
    face behind another whose centre is lower than the front face's forehead,
    are kept.
    """
    kept: list[DetectedFace] = []
    for face in faces:
        if not any(_on_forehead(face.bbox, k.bbox) for k in kept):
            kept.append(face)
    return kept
