"""The ONNX conversion of dlib's face descriptor, proven against dlib itself (CONVENTIONS 16).

dlib's own ``compute_face_descriptor`` is the oracle: on every face of the
package photos the converted network must agree with it to 1e-4 (max absolute
difference per component), so templates enrolled with either stay valid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from core.errors import BackendError
from core.local.dlib_onnx import (
    CHIP_SIZE,
    OnnxFaceDescriptor,
    default_dat_path,
    file_sha256,
    onnx_model_path,
    read_network,
    remembered_sha256,
)
from core.local.engine import CHIP_PADDING, DlibFaceEngine, get_engine
from core.models import BoundingBox
from tests.support.photos import photo_bytes

#: The oracle's tolerance: max |onnx - dlib| over all 128 components of every face.
TOLERANCE = 1e-4
PHOTOS = ("obama", "obama2", "obama3", "biden", "grace_hopper", "astronaut", "t1")


@pytest.fixture(scope="module")
def engine() -> DlibFaceEngine:
    e = get_engine()
    e.load()
    assert e.descriptor_backend == "onnx"
    return e


@pytest.fixture(scope="module")
def faces(engine: DlibFaceEngine) -> list[tuple[str, np.ndarray, BoundingBox]]:
    out = []
    for name in PHOTOS:
        rgb = engine.decode(photo_bytes(name))
        for face in engine.detect(rgb):
            out.append((name, rgb, face.bbox))
    assert len(out) == 12  # six single portraits + the six people of t1
    return out


@pytest.fixture(scope="module")
def dlib_net() -> object:
    import dlib

    return dlib.face_recognition_model_v1(str(default_dat_path()))


def test_onnx_matches_dlib_on_the_same_chips(
    engine: DlibFaceEngine, faces: list[tuple[str, np.ndarray, BoundingBox]], dlib_net: object
) -> None:
    chips = np.stack([engine.face_chip(rgb, box) for _, rgb, box in faces])
    assert chips.shape == (len(faces), CHIP_SIZE, CHIP_SIZE, 3) and chips.dtype == np.uint8
    ours = engine.embed_chips(chips)  # one batch of 12
    theirs = np.asarray([dlib_net.compute_face_descriptor(chip) for chip in chips], dtype=np.float32)  # type: ignore[attr-defined]
    diff = np.abs(ours - theirs).max(axis=1)
    print(
        "max |onnx - dlib| per face:",
        ", ".join(f"{n}:{d:.2e}" for (n, _, _), d in zip(faces, diff, strict=True)),
    )
    assert diff.max() <= TOLERANCE
    # and the values are real descriptors, not two equal degenerate outputs
    assert np.all(np.linalg.norm(theirs, axis=1) > 0.5)


def test_embed_matches_dlib_compute_face_descriptor_end_to_end(
    engine: DlibFaceEngine, faces: list[tuple[str, np.ndarray, BoundingBox]]
) -> None:
    """Shape predictor + chip + ONNX against dlib's ``compute_face_descriptor(img, shape)``."""
    many = engine.embed_many([(rgb, box) for _, rgb, box in faces])
    for (name, rgb, box), row in zip(faces, many, strict=True):
        oracle = engine.embed_with_dlib(rgb, box)
        single = engine.embed(rgb, box)
        assert np.abs(single - oracle).max() <= TOLERANCE, name
        # batching does not change a face's template
        assert np.abs(row - single).max() <= 1e-5, name


def test_chip_is_dlibs_get_face_chip(
    engine: DlibFaceEngine, faces: list[tuple[str, np.ndarray, BoundingBox]]
) -> None:
    import dlib

    _, rgb, box = faces[0]
    _, predictor = engine._get_models()
    shape = predictor(rgb, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    expected = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
    assert CHIP_PADDING == 0.25
    assert np.array_equal(engine.face_chip(rgb, box), expected)


def test_dlib_fallback_engine_gives_the_same_templates(
    engine: DlibFaceEngine, faces: list[tuple[str, np.ndarray, BoundingBox]]
) -> None:
    fallback = DlibFaceEngine(descriptor="dlib")
    fallback._models = engine._get_models()  # share the loaded detector/predictor
    assert fallback.descriptor_backend == "dlib"
    items = [(rgb, box) for _, rgb, box in faces[:3]]
    assert np.abs(fallback.embed_many(items) - engine.embed_many(items)).max() <= TOLERANCE


def test_unknown_descriptor_is_rejected() -> None:
    with pytest.raises(ValueError, match="onnx, dlib"):
        DlibFaceEngine(descriptor="tensorrt")


def test_cache_is_keyed_by_the_dat_sha256(tmp_path: Path) -> None:
    dat = default_dat_path()
    cache = tmp_path / "models"
    first = onnx_model_path(dat, cache_dir=cache)
    assert file_sha256(dat) in first.name and first.parent == cache
    stat = first.stat()
    again = onnx_model_path(dat, cache_dir=cache)  # a second load reuses the file
    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary files left

    # A changed .dat (one fc weight altered) is another key, and another model.
    changed = tmp_path / "changed.dat"
    shutil.copyfile(dat, changed)
    data = bytearray(changed.read_bytes())
    weight_at = data.rindex(b"fc_2") + 4 + 20  # name, then 20 bytes of sizes, then float32 weights
    data[weight_at : weight_at + 4] = np.float32(5.0).tobytes()
    changed.write_bytes(bytes(data))
    other = onnx_model_path(changed, cache_dir=cache)
    assert other != first and file_sha256(changed) in other.name
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, other.name])

    chips = np.random.default_rng(3).integers(0, 256, size=(2, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    original = OnnxFaceDescriptor(dat, cache_dir=cache)(chips)
    altered = OnnxFaceDescriptor(changed, cache_dir=cache)(chips)
    assert np.abs(original - altered).max() > 1e-3


def test_remembered_sha256_is_the_hash_and_follows_a_rewritten_file(tmp_path: Path) -> None:
    data = tmp_path / "net.dat"
    data.write_bytes(b"a" * 5000)
    memos = tmp_path / "memo"
    first = remembered_sha256(data, memos)
    assert first == file_sha256(data) and len(list(memos.iterdir())) == 1
    assert remembered_sha256(data, memos) == first  # answered by the memo
    mtime = data.stat().st_mtime_ns
    data.write_bytes(b"b" * 5000)  # same size, new content, a later mtime
    os.utime(data, ns=(mtime + 10**9, mtime + 10**9))
    assert remembered_sha256(data, memos) == file_sha256(data) != first
    for memo in memos.iterdir():
        memo.write_text("not a hash\n")  # a damaged memo is ignored
    assert remembered_sha256(data, memos) == file_sha256(data)


def test_reader_rejects_a_truncated_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(default_dat_path().read_bytes()[:1_000_000])
    with pytest.raises(BackendError, match="dlib model file"):
        read_network(cut)
    with pytest.raises(BackendError, match="dlib model file"):
        onnx_model_path(cut, cache_dir=tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_reader_reads_dlibs_network() -> None:
    net = read_network(default_dat_path())
    assert net.input_size == (150, 150)
    # dlib's input_rgb_image means, stored as dlib floats (mantissa/exponent)
    assert net.input_mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds[-1] == "fc" and net.layers[-1].weights["weight"].shape == (256, 128)


def test_one_session_per_process_shared_by_engines_and_threads(engine: DlibFaceEngine) -> None:
    other = DlibFaceEngine()
    assert other._get_descriptor() is engine._get_descriptor()  # one ONNX session per process

    fresh = OnnxFaceDescriptor()  # a new runner: its session is created once, under a lock
    chips = np.random.default_rng(5).integers(0, 256, size=(4, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    results: list[np.ndarray] = []
    sessions: list[object] = []

    def work() -> None:
        results.append(fresh(chips))
        sessions.append(fresh._session)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({id(s) for s in sessions}) == 1
    for r in results[1:]:
        assert np.array_equal(r, results[0])


def test_without_onnxruntime_the_engine_says_so_once_and_uses_dlib() -> None:
    code = (
        "import logging, sys; logging.basicConfig(level=logging.WARNING, format='%(message)s'); "
        "sys.modules['onnxruntime'] = None; "  # as if the package were not installed
        "from core.local.engine import DlibFaceEngine; "
        "print(DlibFaceEngine().descriptor_backend, DlibFaceEngine().descriptor_backend)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["dlib", "dlib"]
    warnings = [line for line in out.stderr.splitlines() if "onnxruntime" in line]
    assert len(warnings) == 1 and "dlib's own network" in warnings[0]


def test_concurrent_processes_convert_to_one_whole_file(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    code = (
        "import sys; from pathlib import Path; from core.local.dlib_onnx import onnx_model_path; "
        "print(onnx_model_path(cache_dir=Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(cache)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {p.communicate(timeout=600)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(paths) == 1 and [p.name for p in cache.iterdir()] == [Path(paths.pop()).name]
    chips = np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    assert OnnxFaceDescriptor(cache_dir=cache)(chips).shape == (1, 128)


def test_unwritable_cache_converts_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    runner = OnnxFaceDescriptor(cache_dir=blocker / "models")
    chips = np.random.default_rng(9).integers(0, 256, size=(2, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    with caplog.at_level("WARNING"):
        out = runner(chips)
    assert runner.model_path is None and "converting in memory" in caplog.text
    assert np.abs(out - OnnxFaceDescriptor()(chips)).max() == 0.0


def test_the_optimised_session_is_cached_and_gives_the_same_templates(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    chips = np.random.default_rng(5).integers(0, 256, size=(3, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    first = OnnxFaceDescriptor(cache_dir=cache)
    cold = first(chips)
    assert first.model_path is not None
    optimised = [p for p in cache.iterdir() if p.name.startswith(first.model_path.stem + "-ort-")]
    assert len(optimised) == 1 and not list(cache.glob("*.tmp"))  # written once, atomically
    stat = optimised[0].stat()
    warm = OnnxFaceDescriptor(cache_dir=cache)(chips)  # a later process loads the optimised copy
    assert np.array_equal(cold, warm)
    assert (optimised[0].stat().st_ino, optimised[0].stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    optimised[0].write_bytes(b"not a model")  # a damaged copy is replaced, not trusted
    assert np.array_equal(OnnxFaceDescriptor(cache_dir=cache)(chips), cold)
    assert optimised[0].stat().st_size > 1000
