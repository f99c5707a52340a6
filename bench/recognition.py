"""Recognition benchmark: embed time, vector search time/recall, new face -> decision.

Prints figures only (no assertions; CI never times anything). Sections:

1. **Engine** on the package photos (tests/support/photos.py): HOG detect and
   embed time per face (alignment + ONNX descriptor), on the full photos and on
   edge-style crops (150 px, 30 % margin, JPEG), plus the same/different-person
   distances.
1b. **Embedding**: the ResNet descriptor alone on aligned 150x150 chips, ms per
   face for onnxruntime (one intra-op thread, batch 1 and batch 5 -- the backend
   embeds a track's crops in one batch) against dlib-bin's own
   ``compute_face_descriptor``, and the alignment (shape predictor + chip).
2. **Search** over 10k / 100k / 1M synthetic identities: random 128-D vectors
   shaped like dlib templates (norm ~1.4; two strangers ~0.85 apart, as
   measured on real photos) and queries = a stored vector + same-person noise
   (~0.35 away, the measured same-person median). Exact numpy search time, and
   where the index switches to the faiss IVF fast path (>= ANN_MIN_SIZE with
   faiss-cpu installed) its build time, search time and recall@1 / recall@10
   against exact search. "true@1" is how often the query's own identity ranks
   first (what recognition needs).
3. **New face -> decision** at 100k identities on one core: a never-seen crop
   through ``LocalFaceIndex.search_by_image`` (decode + HOG detect + embed +
   search: a photo or a v1 event), then ``index_face`` on the same crop
   (embedding served from the cache); and the same crop as the edge sends it
   (a v2 ``FaceCrop`` with its YuNet face box) through ``search_crops``
   (decode + align at that box + embed + search, no detection).

Every figure is single-threaded (OMP/OpenBLAS/MKL threads = 1, set before numpy
loads) except the IVF build, which uses all cores as it would in its
background thread. The decision figure is also pinned to one CPU.

Usage::

    python bench/recognition.py            # 10k, 100k, 1M (~4-5 min on 2 cores)
    python bench/recognition.py --quick    # 10k, 100k, fewer queries (~1 min)
    python bench/recognition.py --sizes 10000,300000 --queries 100 --no-faiss
    python bench/recognition.py --embedding-only   # sections 1 and 1b
    python bench/recognition.py --decision-only    # sections 1 and 3
"""

from __future__ import annotations

import os

# Before numpy/faiss load: one BLAS/OpenMP thread, so figures are per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.local.dlib_onnx import OnnxFaceDescriptor  # noqa: E402
from core.local.engine import DlibFaceEngine, get_engine  # noqa: E402
from core.local.faces import LocalFaceIndex  # noqa: E402
from core.local.vectors import ANN_MIN_SIZE, VectorIndex  # noqa: E402
from core.models import FaceCrop  # noqa: E402
from tests.support.photos import photo_bytes  # noqa: E402

PHOTOS = ("obama", "obama2", "obama3", "biden", "grace_hopper", "astronaut")
DIM = 128
# Synthetic template geometry (see module docstring): a shared mean direction
# (real descriptors live in a cone, not a sphere) plus per-identity spread.
MEAN_NORM = 1.26
IDENTITY_SIGMA = 0.053  # sqrt(2 * 128) * 0.053 = 0.85 between two strangers
SAME_PERSON_SIGMA = 0.031  # sqrt(128) * 0.031 = 0.35 between two photos of one person


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def cpu_timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall time and this process's CPU time (robust on a busy machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - start, time.process_time() - cpu


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return f"median {ms(statistics.median(samples))}, p95 {ms(p95)} (n={len(samples)})"


@contextmanager
def one_cpu() -> Iterator[None]:
    """Pin this process to one CPU (Linux) for a per-core figure."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def edge_crop(
    engine: DlibFaceEngine, image: bytes, size: int = 150, margin: float = 0.3, quality: int = 90
) -> bytes:
    """A crop like the edge agent sends: the largest face + margin, ``size`` px, JPEG."""
    from PIL import Image

    rgb = engine.decode(image)
    _, face = engine.embed_largest(image)
    box = face.bbox.expand(margin).clip(rgb.shape[1], rgb.shape[0])
    crop = Image.fromarray(rgb[box.top : box.bottom, box.left : box.right])
    crop = crop.resize((size, max(1, round(size * crop.height / crop.width))), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=quality)
    return out.getvalue()


# ------------------------------------------------------------------------- 1. engine


def bench_engine(engine: DlibFaceEngine) -> list[bytes]:
    print(
        f"\n== 1. Face engine (dlib HOG + 5-point alignment + ResNet on {engine.descriptor_backend}), "
        "package photos, 1 thread"
    )
    _, load_s = timed(engine.load)
    print(f"model load: {ms(load_s)}")
    detect_full, embed_full, detect_crop, embed_crop = [], [], [], []
    templates: dict[str, np.ndarray] = {}
    crops = []
    for name in PHOTOS:
        data = photo_bytes(name)
        rgb = engine.decode(data)
        faces, d_s = timed(lambda rgb=rgb: engine.detect(rgb))
        vector, e_s = timed(lambda rgb=rgb, faces=faces: engine.embed(rgb, faces[0].bbox))
        templates[name] = vector
        detect_full.append(d_s)
        embed_full.append(e_s)
        crop = edge_crop(engine, data)
        crops.append(crop)
        crop_rgb = engine.decode(crop)
        cfaces, cd_s = timed(lambda crop_rgb=crop_rgb: engine.detect(crop_rgb))
        cvec, ce_s = timed(lambda crop_rgb=crop_rgb, cfaces=cfaces: engine.embed(crop_rgb, cfaces[0].bbox))
        detect_crop.append(cd_s)
        embed_crop.append(ce_s)
        up = engine.choose_upsample(*rgb.shape[:2])
        print(
            f"  {name:13s} {rgb.shape[1]}x{rgb.shape[0]} upsample {up}: detect {ms(d_s)}, embed {ms(e_s)}; "
            f"150px crop: detect {ms(cd_s)}, embed {ms(ce_s)}, "
            f"crop vs photo distance {engine.distance(cvec, vector):.3f}"
        )
    frame = _frame_640x480(engine)
    for up in (0, 1):
        runs = [timed(lambda up=up: engine.detect(frame, upsample=up)) for _ in range(5)]
        print(
            f"  640x480 frame (t1 resized), upsample {up}: {len(runs[0][0])} faces, "
            f"{summary([t for _, t in runs])}"
        )
    print(f"detect, full photo: {summary(detect_full)}")
    print(f"detect, 150 px crop: {summary(detect_crop)}")
    print(f"embed per face:      {summary(embed_full + embed_crop)}")
    same = [("obama", "obama2"), ("obama", "obama3"), ("obama2", "obama3")]
    names = list(templates)
    different = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if (a, b) not in same]
    same_d = [engine.distance(templates[a], templates[b]) for a, b in same]
    diff_d = [engine.distance(templates[a], templates[b]) for a, b in different]
    print(f"same-person distances:      {', '.join(f'{d:.3f}' for d in same_d)}")
    print(
        f"different-person distances: min {min(diff_d):.3f}, median {statistics.median(diff_d):.3f}, "
        f"max {max(diff_d):.3f} ({len(diff_d)} pairs)"
    )
    return crops


def bench_embedding(engine: DlibFaceEngine, rounds: int = 6) -> None:
    print("\n== 1b. Embedding: ResNet descriptor per face on aligned chips, one thread")
    chips, align_t = [], []
    for name in (*PHOTOS, "t1"):
        rgb = engine.decode(photo_bytes(name))
        for face in engine.detect(rgb):
            chip, t = timed(lambda rgb=rgb, face=face: engine.face_chip(rgb, face.bbox))
            chips.append(chip)
            align_t.append(t)
    batch = np.stack(chips)
    onnx = OnnxFaceDescriptor(threads=1)
    _, load_s = timed(onnx.load)
    print(f"{len(chips)} faces; ONNX session load {ms(load_s)} (conversion included on a cold cache)")
    import dlib

    from core.local.dlib_onnx import default_dat_path

    net = dlib.face_recognition_model_v1(str(default_dat_path()))
    onnx(batch[:5])  # warm-up
    net.compute_face_descriptor(chips[0])
    one, five, ref = [], [], []  # (wall, cpu) per face
    with one_cpu():
        for _ in range(rounds):
            for chip in chips:
                one.append(cpu_timed(lambda chip=chip: onnx(chip[None]))[1:])
            for start in range(0, len(chips) - 4, 5):
                _, wall, cpu = cpu_timed(lambda start=start: onnx(batch[start : start + 5]))
                five.append((wall / 5, cpu / 5))
        for chip in chips[: max(3, len(chips) // 2)]:
            ref.append(cpu_timed(lambda chip=chip: net.compute_face_descriptor(chip))[1:])
    print(f"alignment (5-point predictor + dlib chip), wall: {summary(align_t)}")
    rows = (("ONNX batch 1", one), ("ONNX batch 5", five), ("dlib-bin", ref))
    for label, samples in rows:
        print(
            f"{label + ', per face:':22s} wall {summary([w for w, _ in samples])}; "
            f"CPU median {ms(statistics.median(c for _, c in samples))}"
        )
    for kind, col in (("wall", 0), ("CPU", 1)):
        base = statistics.median(r[col] for r in ref)
        print(
            f"speed-up vs dlib-bin ({kind}): batch 1 x{base / statistics.median(o[col] for o in one):.1f}, "
            f"batch 5 x{base / statistics.median(f[col] for f in five):.1f}"
        )
    print("target: <= 10 ms per face on one thread (CPU time is the figure a quiet core would show)")


def _frame_640x480(engine: DlibFaceEngine) -> np.ndarray:
    from PIL import Image

    group = Image.fromarray(engine.decode(photo_bytes("t1")))
    return np.asarray(group.resize((640, 480), Image.Resampling.LANCZOS))


# ------------------------------------------------------------------------- 2. search


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    mean = rng.normal(size=DIM).astype(np.float32)
    mean *= MEAN_NORM / np.linalg.norm(mean)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 200_000):  # chunks keep the float64 temporaries small
        stop = min(n, start + 200_000)
        out[start:stop] = mean + rng.normal(scale=IDENTITY_SIGMA, size=(stop - start, DIM))
    return out


def noisy_queries(data: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    picks = rng.choice(len(data), size=count, replace=False)
    queries = data[picks] + rng.normal(scale=SAME_PERSON_SIGMA, size=(count, DIM)).astype(np.float32)
    return picks, queries.astype(np.float32)


def bench_search(sizes: list[int], queries: int, use_faiss: bool) -> None:
    print("\n== 2. Vector search, synthetic dlib-like identities, k=10, 1 thread")
    rng = np.random.default_rng(42)
    for n in sizes:
        data, gen_s = timed(lambda n=n: synthetic(n, rng))
        index = VectorIndex(None, dim=DIM, use_faiss=use_faiss)
        ids = [f"id{i}" for i in range(n)]
        _, add_s = timed(lambda ids=ids, data=data, index=index: index.add_many(ids, data))
        count = queries if n < 1_000_000 else max(50, queries // 2)
        picks, qs = noisy_queries(data, count, rng)
        exact_t, exact_hits = [], []
        for q in qs:
            hits, t = timed(lambda q=q, index=index: index.search(q, k=10, exact=True))
            exact_t.append(t)
            exact_hits.append([h[0] for h in hits])
        true1 = np.mean([h[0] == f"id{p}" for h, p in zip(exact_hits, picks, strict=True)])
        print(f"n={n:>9,}: generate {gen_s:.1f}s, add {add_s:.1f}s")
        print(f"  exact numpy : {summary(exact_t)}; true@1 {true1:.3f}")
        if not use_faiss or n < ANN_MIN_SIZE:
            continue
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)  # the build runs in the background
        ready, build_s = timed(lambda index=index: index.prepare_fast_path(timeout=900))
        faiss.omp_set_num_threads(1)
        if not ready:
            print("  faiss IVF   : not available")
            continue
        fast_t, r1, r10 = [], [], []
        for q, exact in zip(qs, exact_hits, strict=True):
            hits, t = timed(lambda q=q, index=index: index.search(q, k=10))
            fast_t.append(t)
            got = [h[0] for h in hits]
            r1.append(got[:1] == exact[:1])
            r10.append(len(set(got) & set(exact)) / len(exact))
        ivf = index._ann.index
        print(
            f"  faiss IVF   : build {build_s:.1f}s (nlist {ivf.nlist}, nprobe {ivf.nprobe}, "
            f"{os.cpu_count()} threads); search {summary(fast_t)}; "
            f"recall@1 {np.mean(r1):.3f}, recall@10 {np.mean(r10):.3f}"
        )
        del index, data


# ----------------------------------------------------------------------- 3. decision


def bench_decision(engine: DlibFaceEngine, crops: list[bytes], identities: int) -> None:
    print(f"\n== 3. New face -> decision at {identities:,} identities, one core")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="storelens-bench-") as tmp:
        faces = LocalFaceIndex(Path(tmp), engine=engine)
        faces.create_collection("bench")
        data = synthetic(identities, rng)
        _, load_s = timed(lambda: faces.add_vectors("bench", data, [f"cus_{i}" for i in range(identities)]))
        print(f"bulk load: {load_s:.1f}s")
        decide, index_t = [], []
        with one_cpu():
            for round_ in range(3):
                for crop in crops:
                    # re-encode so every probe is a cache miss, like a new event
                    fresh = _reencode(crop, quality=88 - round_)
                    _hits, t = timed(lambda fresh=fresh: faces.search_by_image("bench", fresh, 0.42, 10))
                    decide.append(t)
                    _, ti = timed(lambda fresh=fresh: faces.index_face("bench", fresh, "pid_bench"))
                    index_t.append(ti)
        print(f"search_by_image (decode+detect+embed+search): {summary(decide)}")
        print(f"index_face right after (cached embedding):     {summary(index_t)}")
        # What a FaceEvent from the edge goes through: the crop carries its YuNet face box,
        # so the backend decodes, aligns at that box, embeds and searches (no detection).
        edge = [_edge_face_crop(crop) for crop in crops]
        faces.search_crops("bench", [edge[0]], 0.42, 10, detector="yunet")  # warm-up
        event_t, event_cpu = [], []
        with one_cpu():
            for round_ in range(3):
                for crop in edge:
                    fresh = dataclasses.replace(crop, jpeg=_reencode(crop.jpeg, quality=88 - round_))
                    _hits, t, c = cpu_timed(
                        lambda fresh=fresh: faces.search_crops("bench", [fresh], 0.42, 10, detector="yunet")
                    )
                    event_t.append(t)
                    event_cpu.append(c)
        print(
            f"edge crop with its face box (decode+align+embed+search): {summary(event_t)}; "
            f"CPU median {ms(statistics.median(event_cpu))}"
        )
        faces.close()


def _edge_face_crop(jpeg: bytes) -> FaceCrop:
    """A FaceCrop as the edge sends it: the crop with the face box (and landmarks) YuNet found in it."""
    import cv2

    from deeplens_lambda.detectors import YuNetDetector

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    face = max(YuNetDetector(min_face_px=20).detect(image), key=lambda f: f.bbox.area)
    return FaceCrop(
        jpeg=jpeg,
        bbox=face.bbox,
        face=face.bbox,
        captured_at=datetime.now(UTC),
        confidence=face.confidence,
        landmarks=face.landmarks,
    )


def _reencode(jpeg: bytes, quality: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as img:
        img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def bench_ingest(events: int) -> None:
    """Ingest events/s with and without embedding, and with several processes (``bench/ingest.py``)."""
    import subprocess

    # A subprocess, not an import: bench/ingest.py spawns workers that must
    # import it by its own module name.
    print(flush=True)
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("ingest.py")), "--events", str(events)], check=True
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k only, fewer queries")
    parser.add_argument("--sizes", help="comma-separated identity counts (default 10000,100000,1000000)")
    parser.add_argument("--queries", type=int, default=200, help="search queries per size")
    parser.add_argument("--no-faiss", action="store_true", help="exact numpy search only")
    parser.add_argument("--decision-identities", type=int, default=100_000)
    parser.add_argument("--embedding-only", action="store_true", help="sections 1 and 1b only (~30 s)")
    parser.add_argument("--decision-only", action="store_true", help="sections 1 and 3 only")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    queries = min(args.queries, 50) if args.quick else args.queries
    use_faiss = not args.no_faiss
    if use_faiss:
        try:
            import faiss  # noqa: F401
        except ImportError:
            print("faiss-cpu not installed: exact search only (pip install faiss-cpu==1.15.1)")
            use_faiss = False

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(
        f"StoreLens recognition benchmark: {os.cpu_count()} CPUs, load average {load[0]:.1f}, "
        f"numpy {np.__version__}, exact below {ANN_MIN_SIZE:,} identities"
        + (", faiss IVF above" if use_faiss else "")
    )
    started = time.perf_counter()
    engine = get_engine()
    crops = bench_engine(engine)
    if args.decision_only:
        bench_decision(engine, crops, args.decision_identities)
        return
    bench_embedding(engine)
    if args.embedding_only:
        return
    bench_search(sizes, queries, use_faiss)
    bench_decision(engine, crops, args.decision_identities)
    bench_ingest(30 if args.quick else 60)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
