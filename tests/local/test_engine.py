"""The dlib face engine on real photos with the real models (no mocks)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.errors import FaceNotFoundError, ImageDecodeError
from core.local.engine import (
    ASSUMED_FACE_CONFIDENCE,
    MIN_HOG_SCORE,
    DlibFaceEngine,
    _from_dlib_rect,
    _to_dlib_rect,
    distance_to_similarity,
    get_engine,
    hog_score_to_confidence,
    predictor_box_from_yunet,
    similarity_to_distance,
)
from core.models import BoundingBox
from core.settings import Settings
from tests.support.photos import photo_bytes

# Decision distances implied by the default settings: a match needs similarity
# >= match_threshold, i.e. distance <= 1 - match_threshold.
MATCH_DISTANCE = similarity_to_distance(Settings().match_threshold)  # 0.45
# Different people measured 0.64-0.98; anything under 0.6 would be a false match risk.
STRANGER_DISTANCE = 0.6


@pytest.fixture(scope="module")
def engine() -> DlibFaceEngine:
    e = get_engine()
    e.load()
    return e


@pytest.fixture(scope="module")
def templates(engine: DlibFaceEngine) -> dict[str, np.ndarray]:
    out = {}
    for name in ("obama", "obama2", "obama3", "biden", "grace_hopper"):
        vector, _face = engine.embed_largest(photo_bytes(name))
        out[name] = vector
    return out


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_import_loads_no_model() -> None:
    code = (
        "import sys, core.local.engine, core.local.faces; "
        "print(any(m in sys.modules for m in ('dlib', 'onnxruntime', 'onnx')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_get_engine_is_one_instance() -> None:
    assert get_engine() is get_engine()


def test_group_photo_has_six_faces_largest_first(engine: DlibFaceEngine) -> None:
    rgb = engine.decode(photo_bytes("t1"))
    faces = engine.detect(rgb)
    print("t1:", [(f.bbox.width, f.confidence) for f in faces])
    assert len(faces) == 6
    areas = [f.bbox.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    height, width = rgb.shape[:2]
    for face in faces:
        assert 0.5 <= face.confidence <= 1.0  # kept detections map to >= 0.5
        assert face.bbox == face.bbox.clip(width, height)
        assert 60 <= face.bbox.width <= 200


def test_same_person_is_close_and_strangers_are_far(templates: dict[str, np.ndarray]) -> None:
    engine = get_engine()
    same = {n: engine.distance(templates["obama"], templates[n]) for n in ("obama2", "obama3")}
    different = {n: engine.distance(templates["obama"], templates[n]) for n in ("biden", "grace_hopper")}
    different["biden-grace_hopper"] = engine.distance(templates["biden"], templates["grace_hopper"])
    print(f"same person: {same}; different: {different}; match needs <= {MATCH_DISTANCE}")
    for name, d in same.items():
        assert d <= MATCH_DISTANCE, name
        assert distance_to_similarity(d) >= Settings().match_threshold
    for name, d in different.items():
        assert d >= STRANGER_DISTANCE, name
        assert distance_to_similarity(d) < Settings().review_threshold


def test_templates_are_128_float32(templates: dict[str, np.ndarray]) -> None:
    for vector in templates.values():
        assert vector.shape == (128,) and vector.dtype == np.float32
        assert 1.2 < float(np.linalg.norm(vector)) < 1.6  # dlib descriptors sit near 1.4


@pytest.mark.parametrize("size", [80, 120, 200, 300])
@pytest.mark.parametrize("margin", [0.25, 0.4])
def test_edge_crops_are_detected_and_match(
    engine: DlibFaceEngine, templates: dict[str, np.ndarray], size: int, margin: float
) -> None:
    """Crops like the edge agent sends: one face, 25-40 % margin, 80-300 px, JPEG."""
    rgb = engine.decode(photo_bytes("obama2"))
    face = engine.detect(rgb)[0].bbox.expand(margin).clip(rgb.shape[1], rgb.shape[0])
    crop = Image.fromarray(rgb[face.top : face.bottom, face.left : face.right])
    crop = crop.resize((size, round(size * crop.height / crop.width)), Image.Resampling.LANCZOS)
    crop_rgb = engine.decode(_jpeg(np.asarray(crop)))
    faces = engine.detect(crop_rgb)
    assert len(faces) == 1
    d = engine.distance(engine.embed(crop_rgb, faces[0].bbox), templates["obama2"])
    print(f"crop {size}px margin {margin}: distance to full photo {d:.3f}")
    assert d < 0.3
    assert engine.distance(engine.embed(crop_rgb, faces[0].bbox), templates["obama"]) <= MATCH_DISTANCE


def test_assume_face_fallback_only_when_asked(engine: DlibFaceEngine) -> None:
    blank = np.full((120, 100, 3), 127, dtype=np.uint8)
    assert engine.detect(blank) == []
    assumed = engine.detect(blank, assume_face=True)
    assert len(assumed) == 1
    assert assumed[0].confidence == ASSUMED_FACE_CONFIDENCE
    box = assumed[0].bbox
    assert box.clip(100, 120) == box and 50 < box.width < 80 and abs(box.center[0] - 50) <= 1
    # never for frames: a whole scene has no "central face"
    assert engine.detect(np.full((480, 640, 3), 127, dtype=np.uint8), assume_face=True) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((240, 320, 3), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, size=(480, 640, 3), dtype=np.uint8),
        np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))[:, :, None].repeat(3, axis=2),
    ],
    ids=["black", "noise", "gradient"],
)
def test_image_without_face_has_no_detections(engine: DlibFaceEngine, image: np.ndarray) -> None:
    assert engine.detect(engine.decode(_jpeg(image))) == []
    with pytest.raises(FaceNotFoundError):
        engine.embed_largest(_jpeg(image))


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"\xff\xd8\xff\xe0garbage\xff\xd9"],
)
def test_bad_bytes_raise_image_decode_error(engine: DlibFaceEngine, data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        engine.decode(data)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_jpeg_raises_image_decode_error(engine: DlibFaceEngine, keep: float) -> None:
    data = photo_bytes("obama")
    with pytest.raises(ImageDecodeError, match="truncated"):
        engine.decode(data[: int(len(data) * keep)])


def test_truncated_png_raises_image_decode_error(engine: DlibFaceEngine) -> None:
    data = photo_bytes("astronaut")
    with pytest.raises(ImageDecodeError):
        engine.decode(data[: len(data) // 2])


def test_decode_gives_rgb_uint8(engine: DlibFaceEngine) -> None:
    rgb = engine.decode(photo_bytes("astronaut"))  # a PNG
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3) and rgb.flags.c_contiguous
    gray = io.BytesIO()
    Image.new("L", (50, 40), 200).save(gray, format="PNG")
    assert engine.decode(gray.getvalue()).shape == (40, 50, 3)


def test_choose_upsample(engine: DlibFaceEngine) -> None:
    assert engine.choose_upsample(80, 80) == 1  # small crop: ~44 px face
    assert engine.choose_upsample(60, 60) == 2
    assert engine.choose_upsample(300, 300) == 0  # big crop: ~165 px face
    assert engine.choose_upsample(480, 640) == 1  # frame: find 40 px faces
    assert engine.choose_upsample(1080, 1920) == 0  # large frame: not upsampled


def test_similarity_scale_round_trip() -> None:
    assert distance_to_similarity(0.0) == 1.0
    assert distance_to_similarity(1.7) == 0.0
    assert distance_to_similarity(0.35) == pytest.approx(0.65)
    for s in (0.0, 0.42, 0.55, 1.0):
        assert distance_to_similarity(similarity_to_distance(s)) == pytest.approx(s)
    assert hog_score_to_confidence(MIN_HOG_SCORE) == 0.5
    assert hog_score_to_confidence(2.0) > hog_score_to_confidence(1.0) > 0.5


def test_dlib_rect_conversion_round_trips() -> None:
    box = BoundingBox(10, 20, 100, 120)
    rect = _to_dlib_rect(box)
    assert (rect.left(), rect.top(), rect.right(), rect.bottom()) == (10, 20, 109, 139)
    assert _from_dlib_rect(rect) == box


def test_embed_many_is_one_row_per_face_in_order(engine: DlibFaceEngine) -> None:
    rgb = engine.decode(photo_bytes("t1"))
    faces = engine.detect(rgb)
    many = engine.embed_many([(rgb, f.bbox) for f in reversed(faces)])
    assert many.shape == (6, 128) and many.dtype == np.float32
    for row, face in zip(many, reversed(faces), strict=True):
        assert engine.distance(row, engine.embed(rgb, face.bbox)) < 1e-5
    # six different people: no two rows alike
    assert min(engine.distance(a, b) for i, a in enumerate(many) for b in many[i + 1 :]) > 0.5
    assert engine.embed_many([]).shape == (0, 128)


def test_embed_rejects_a_box_outside_the_image(engine: DlibFaceEngine) -> None:
    rgb = engine.decode(photo_bytes("obama"))
    with pytest.raises(FaceNotFoundError):
        engine.embed(rgb, BoundingBox(rgb.shape[1] + 10, 0, 50, 50))


def test_yunet_boxes_mapped_for_the_predictor_land_near_the_hog_template(engine: DlibFaceEngine) -> None:
    """A YuNet box goes through predictor_box_from_yunet before the 5-point predictor."""
    import yuface

    for name in ("obama", "obama2", "biden", "grace_hopper"):
        rgb = engine.decode(photo_bytes(name))
        hog = engine.detect(rgb)[0].bbox
        _scores, boxes, _landmarks = yuface.detect(np.ascontiguousarray(rgb[:, :, ::-1]), conf=0.5)
        x, y, w, h = (int(v) for v in max(boxes, key=lambda b: int(b[2]) * int(b[3])))
        yunet = BoundingBox(x, y, w, h)
        mapped = predictor_box_from_yunet(yunet)
        assert abs(mapped.center[0] - hog.center[0]) < 0.15 * hog.width, name
        assert abs(mapped.width - hog.width) < 0.2 * hog.width, name
        template = engine.embed(rgb, hog)
        d_mapped = engine.distance(engine.embed(rgb, mapped), template)
        d_raw = engine.distance(engine.embed(rgb, yunet), template)
        print(f"{name}: raw YuNet box {d_raw:.3f}, mapped {d_mapped:.3f}")
        assert d_mapped < 0.15, name
