"""Recognition accuracy: pair ROC on the package photos and on a real clip.

It prints the figures and writes them to ``bench/accuracy.json`` (``--out``;
the format is :func:`core.privacy_docs.accuracy_record`), which the generated
DPIA inputs quote (``core.privacy_docs.dpia_inputs``); without that file the
DPIA says that no measurement exists yet.

Two pair sets, each embedded with the engine's ONNX descriptor (dlib's ResNet):

(a) **Package photos** (tests/support/photos.py). Identities: obama, obama2 and
    obama3 are one person; biden, grace_hopper, astronaut and the six people of
    the group photo t1 are one each. Every face is used as found in the photo
    (HOG, as enrolment does) and as edge-style crops the backend receives:
    150, 80 and 60 px wide, 30 % margin, JPEG q85, re-detected with YuNet.
    Same-person pairs are split into *cross-photo* (two different photos of
    one person: the hard, real case) and *same-photo* (a crop against its own
    photo: degradation only).
(b) **A real clip**, ``../shared/data/walkway/walkway-1080p.mp4`` (1080p, nine
    people walking towards the camera, faces 40-140 px). Every ``--every``-th
    frame, YuNet (``yuface``) detects faces on the frame scaled so a
    ``--min-face``-px face is ~20 px (YuNet's comfortable minimum); detections
    are associated into tracks by IoU between consecutive sampled frames.
    Crops of one track are one person; crops of two tracks that are on screen
    in the same frame are two different people (tracks that never overlap in
    time are not paired: they may be one person whose track broke). Faces
    under ``--min-face`` px are skipped, as the edge's quality gate does.

For each set it prints the distance distributions, TAR at FAR = 0 and at
FAR = 1e-3 (with the threshold that achieves it), and per-track figures
(two halves of a track against each other vs other tracks' means), then
suggests match / review / cluster thresholds on the similarity scale
``1 - d`` from both sets together.

Usage::

    python bench/accuracy.py              # every 2nd frame (~1-2 min on 2 cores)
    python bench/accuracy.py --every 4    # faster
    python bench/accuracy.py --raw-boxes  # YuNet boxes straight into the predictor
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.local.engine import DlibFaceEngine, get_engine, predictor_box_from_yunet  # noqa: E402
from core.models import BoundingBox  # noqa: E402
from core.privacy_docs import ACCURACY_FILE, accuracy_record  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.support.photos import photo_bytes  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "walkway" / "walkway-1080p.mp4"
PHOTO_IDENTITY = {
    "obama": "obama",
    "obama2": "obama",
    "obama3": "obama",
    "biden": "biden",
    "grace_hopper": "grace_hopper",
    "astronaut": "astronaut",
    "t1": "t1",  # six people: t1#0..t1#5
}
CROP_SIZES = (150, 80, 60)
#: The quality gate of the "gated" clip figures (see :func:`frontal`).
MIN_SCORE = 0.80
MAX_YAW = 0.35
#: --raw-boxes: give the 5-point predictor YuNet's own boxes (to compare; worse).
RAW_BOXES = False


# ----------------------------------------------------------------------------- stats


@dataclass
class PairSet:
    name: str
    same: list[float] = field(default_factory=list)
    different: list[float] = field(default_factory=list)


def rates(pairs: PairSet) -> dict[str, float]:
    """TAR at FAR = 0 and 1e-3, with the distance thresholds that give them."""
    same = np.sort(np.asarray(pairs.same))
    diff = np.sort(np.asarray(pairs.different))
    out: dict[str, float] = {}
    # FAR = 0: accept below the closest stranger pair.
    t0 = float(diff[0])
    out["t_far0"] = t0
    out["tar_far0"] = float(np.mean(same < t0))
    # FAR = 1e-3: at most floor(1e-3 * n) stranger pairs accepted.
    k = int(1e-3 * len(diff))
    t3 = float(diff[k])
    out["t_far1e3"] = t3
    out["tar_far1e3"] = float(np.mean(same < t3))
    out["far1e3_meaningful"] = float(len(diff) >= 1000)
    return out


def describe(values: list[float]) -> str:
    v = np.asarray(values)
    q = np.percentile(v, [0, 1, 5, 50, 95, 99, 100])
    return (
        f"n={len(v):>6}  min {q[0]:.3f}  p1 {q[1]:.3f}  p5 {q[2]:.3f}  median {q[3]:.3f}  "
        f"p95 {q[4]:.3f}  p99 {q[5]:.3f}  max {q[6]:.3f}"
    )


def histogram(pairs: PairSet, lo: float = 0.0, hi: float = 1.1, step: float = 0.05) -> None:
    edges = np.arange(lo, hi + 1e-9, step)
    s, _ = np.histogram(np.clip(pairs.same, lo, hi - 1e-9), edges)
    d, _ = np.histogram(np.clip(pairs.different, lo, hi - 1e-9), edges)
    s_frac = s / max(1, s.sum())
    d_frac = d / max(1, d.sum())
    print("    distance    same-person                     different-person")
    for i in range(len(edges) - 1):
        if s[i] == 0 and d[i] == 0:
            continue
        print(
            f"    {edges[i]:.2f}-{edges[i + 1]:.2f}  {s[i]:6d} {'#' * round(30 * s_frac[i]):30s}  "
            f"{d[i]:6d} {'#' * round(30 * d_frac[i])}"
        )


def report(pairs: PairSet) -> dict[str, float]:
    r = rates(pairs)
    print(f"  same-person      {describe(pairs.same)}")
    print(f"  different-person {describe(pairs.different)}")
    histogram(pairs)
    print(
        f"  TAR @ FAR=0    : {r['tar_far0']:.3f}  "
        f"(accept d < {r['t_far0']:.3f}, similarity > {1 - r['t_far0']:.3f})"
    )
    note = "" if r["far1e3_meaningful"] else f"  [only {len(pairs.different)} stranger pairs: coarse]"
    print(
        f"  TAR @ FAR=1e-3 : {r['tar_far1e3']:.3f}  (accept d < {r['t_far1e3']:.3f}, "
        f"similarity > {1 - r['t_far1e3']:.3f}){note}"
    )
    return r


# ------------------------------------------------------------------------ detection


def yunet(bgr: np.ndarray, conf: float = 0.6) -> list[tuple[BoundingBox, float, np.ndarray]]:
    """YuNet faces: (box, score 0..1, 5x2 landmarks), in ``bgr``'s pixels."""
    import yuface

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "image is large" warnings
        scores, boxes, landmarks = yuface.detect(np.ascontiguousarray(bgr), conf=conf)
    return [
        (BoundingBox(int(x), int(y), int(w), int(h)), float(s) / 100.0, lm.astype(float).reshape(5, 2))
        for s, (x, y, w, h), lm in zip(scores, boxes, landmarks, strict=True)
    ]


def frontal(box: BoundingBox, score: float, landmarks: np.ndarray) -> bool:
    """A crude quality gate: a confident, roughly frontal face (what the edge should send).

    YuNet scores real faces of 40+ px at 0.84-0.92 here; the backs and tops of
    heads it also reports score 0.6-0.75 (and get plausible-looking landmarks).
    Yaw proxy: the nose's horizontal offset from the eyes' midpoint, in eye
    distances.
    """
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eyes = float(np.linalg.norm(left_eye - right_eye))
    if score < MIN_SCORE or eyes < 0.2 * box.width:
        return False
    return abs(nose[0] - (right_eye[0] + left_eye[0]) / 2) / eyes <= MAX_YAW


def hog_like(box: BoundingBox, scale: float = 1.0) -> BoundingBox:
    """A YuNet box found at ``scale``, as the box the 5-point predictor expects, in full-size pixels."""
    full = BoundingBox(*(round(v / scale) for v in (box.left, box.top, box.width, box.height)))
    return full if RAW_BOXES else predictor_box_from_yunet(full)


def iou(a: BoundingBox, b: BoundingBox) -> float:
    x0, y0 = max(a.left, b.left), max(a.top, b.top)
    x1, y1 = min(a.right, b.right), min(a.bottom, b.bottom)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


# ------------------------------------------------------------------------ (a) photos


def photo_pairs(engine: DlibFaceEngine) -> PairSet:
    from PIL import Image

    samples: list[tuple[str, str, np.ndarray]] = []  # (identity, source photo face, vector)
    for name, identity in PHOTO_IDENTITY.items():
        rgb = engine.decode(photo_bytes(name))
        faces = engine.detect(rgb)
        if name != "t1":
            faces = faces[:1]
        for i, face in enumerate(faces):
            who = f"{identity}#{i}" if name == "t1" else identity
            source = f"{name}#{i}"
            samples.append((who, source, engine.embed(rgb, face.bbox)))
            box = face.bbox.expand(0.3).clip(rgb.shape[1], rgb.shape[0])
            region = Image.fromarray(rgb[box.top : box.bottom, box.left : box.right])
            for size in CROP_SIZES:
                crop = region.resize(
                    (size, max(1, round(size * region.height / region.width))), Image.LANCZOS
                )
                buf = io.BytesIO()
                crop.save(buf, format="JPEG", quality=85)
                crop_rgb = engine.decode(buf.getvalue())
                found = yunet(np.ascontiguousarray(crop_rgb[:, :, ::-1]), conf=0.5)
                if not found:
                    print(f"  ({source} at {size} px: YuNet found no face)")
                    continue
                best = max(found, key=lambda f: f[0].area)[0]  # type: ignore[union-attr]
                samples.append((who, source, engine.embed(crop_rgb, hog_like(best))))
    cross = PairSet("photos, cross-photo")
    same_photo: list[float] = []
    for (who_a, src_a, va), (who_b, src_b, vb) in combinations(samples, 2):
        d = engine.distance(va, vb)
        if who_a != who_b:
            cross.different.append(d)
        elif src_a != src_b:
            cross.same.append(d)
        else:
            same_photo.append(d)
    print(f"  {len(samples)} samples of {len({s[0] for s in samples})} people")
    print(f"  same photo, crop vs crop/photo {describe(same_photo)}")
    return cross


# -------------------------------------------------------------------------- (b) clip


@dataclass
class Track:
    ident: int
    frames: list[int] = field(default_factory=list)
    boxes: list[BoundingBox] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    good: list[bool] = field(default_factory=list)  # passed the quality gate


def clip_tracks(engine: DlibFaceEngine, clip: Path, every: int, min_face: int) -> list[Track]:
    import cv2

    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {clip}")
    tracks: list[Track] = []
    active: list[Track] = []
    index = -1
    detect_s = embed_s = 0.0
    skipped = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        index += 1
        if index % every:
            continue
        # scale so a min_face face is ~20 px for YuNet (x0.5 on 1080p for 40 px)
        scale = min(1.0, 20.0 / min_face)
        small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else bgr
        t = time.perf_counter()
        frame_h, frame_w = bgr.shape[:2]
        found = [(hog_like(b, scale).clip(frame_w, frame_h), frontal(b, s, lm)) for b, s, lm in yunet(small)]
        detect_s += time.perf_counter() - t
        # greedy IoU association with the previous sampled frame's tracks
        pairs = sorted(
            (
                (iou(tr.boxes[-1], b), ti, bi)
                for ti, tr in enumerate(active)
                for bi, (b, _) in enumerate(found)
            ),
            reverse=True,
        )
        used_t, used_b, assigned = set(), set(), {}
        for overlap, ti, bi in pairs:
            if overlap < 0.3:
                break
            if ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            assigned[bi] = active[ti]
        next_active = []
        keep: list[tuple[Track, BoundingBox, bool]] = []
        for bi, (box, good) in enumerate(found):
            track = assigned.get(bi)
            if track is None:
                track = Track(len(tracks))
                tracks.append(track)
            track.frames.append(index)
            track.boxes.append(box)
            next_active.append(track)
            if box.width >= min_face:
                keep.append((track, box, good))
            else:
                skipped += 1
        active = next_active
        if keep:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            t = time.perf_counter()
            vectors = engine.embed_many([(rgb, box) for _, box, _ in keep])  # one batch per frame
            embed_s += time.perf_counter() - t
            for (track, _, good), vector in zip(keep, vectors, strict=True):
                track.vectors.append(vector)
                track.good.append(good)
    n = sum(len(t.vectors) for t in tracks)
    print(
        f"  {index + 1} frames, every {every}: {sum(len(t.frames) for t in tracks)} detections in "
        f"{len(tracks)} tracks; {n} crops >= {min_face} px embedded ({skipped} smaller skipped), "
        f"{sum(sum(t.good) for t in tracks)} pass the quality gate; "
        f"detect {detect_s:.1f}s, align+embed {embed_s:.1f}s ({1000 * embed_s / max(1, n):.1f} ms/face)"
    )
    return [t for t in tracks if t.vectors]


def clip_pairs(all_tracks: list[Track], gated: bool) -> tuple[PairSet, PairSet]:
    tracks = []
    for tr in all_tracks:
        keep = [i for i, good in enumerate(tr.good) if good or not gated]
        if keep:
            tracks.append(
                Track(tr.ident, tr.frames, tr.boxes, [tr.vectors[i] for i in keep], [True] * len(keep))
            )
    crops = PairSet("walkway clip, crops")
    for tr in tracks:
        v = np.asarray(tr.vectors)
        for i, j in combinations(range(len(v)), 2):
            crops.same.append(float(np.linalg.norm(v[i] - v[j])))
    for a, b in combinations(tracks, 2):
        if not set(a.frames) & set(b.frames):
            continue  # never on screen together: maybe one person, not a negative
        va, vb = np.asarray(a.vectors), np.asarray(b.vectors)
        d = np.linalg.norm(va[:, None, :] - vb[None, :, :], axis=2)
        crops.different.extend(float(x) for x in d.ravel())
    # Per person: a track's first half vs its second half (mean templates), against
    # other overlapping tracks' means -- the evidence a per-track decision uses.
    means = PairSet("walkway clip, track means")
    halves = {}
    for tr in tracks:
        if len(tr.vectors) >= 4:
            v = np.asarray(tr.vectors)
            h = len(v) // 2
            halves[tr.ident] = (v[:h].mean(0), v[h:].mean(0))
            means.same.append(float(np.linalg.norm(halves[tr.ident][0] - halves[tr.ident][1])))
    for a, b in combinations(tracks, 2):
        if a.ident in halves and b.ident in halves and set(a.frames) & set(b.frames):
            for x in halves[a.ident]:
                for y in halves[b.ident]:
                    means.different.append(float(np.linalg.norm(x - y)))
    return crops, means


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--every", type=int, default=2, help="use every N-th frame (default 2)")
    parser.add_argument("--min-face", type=int, default=40, help="smallest face embedded, px (default 40)")
    parser.add_argument(
        "--raw-boxes", action="store_true", help="skip predictor_box_from_yunet (shows what the mapping buys)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ACCURACY_FILE,
        help="figures file (bench/accuracy.json)",
    )
    args = parser.parse_args(argv)
    global RAW_BOXES
    RAW_BOXES = args.raw_boxes

    engine = get_engine()
    engine.load()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"StoreLens accuracy: descriptor on {engine.descriptor_backend}, load average {load:.1f}")
    started = time.perf_counter()

    print("\n== (a) package photos: cross-photo same-person pairs vs different people")
    photos = photo_pairs(engine)
    r_photos = report(photos)

    print(f"\n== (b) {args.clip.name}: YuNet tracks, crops >= {args.min_face} px")
    tracks = clip_tracks(engine, args.clip, args.every, args.min_face)
    print(f"  crops per track: {sorted((len(t.vectors) for t in tracks), reverse=True)}")
    sets: dict[str, PairSet] = {"photos cross-photo": photos}
    results: dict[str, dict[str, float]] = {"photos cross-photo": r_photos}
    for gated in (False, True):
        crops, means = clip_pairs(tracks, gated)
        tag = "gated" if gated else "all"
        what = (
            f"quality-gated (score >= {MIN_SCORE}, yaw <= {MAX_YAW})" if gated else "every crop >= min face"
        )
        print(f"  -- {what}, per crop")
        results[f"clip crops ({tag})"] = report(crops)
        sets[f"clip crops ({tag})"] = crops
        print(f"  -- {what}, per track (mean template of each half of a track)")
        if means.same and means.different:
            results[f"clip tracks ({tag})"] = report(means)
            sets[f"clip tracks ({tag})"] = means

    print("\n== Operating points (similarity = 1 - d): TAR / FAR per pair set")
    header = "  similarity  " + "  ".join(f"{name:>20s}" for name in sets)
    print(header)
    for sim in (0.70, 0.65, 0.60, 0.55, 0.50, 0.45, 0.42, 0.40):
        cells = []
        for pairs in sets.values():
            d = 1 - sim
            tar = float(np.mean(np.asarray(pairs.same) <= d))
            far = float(np.mean(np.asarray(pairs.different) <= d))
            cells.append(f"{tar:.3f} / {far:.4f}")
        print(f"  >= {sim:.2f}     " + "  ".join(f"{c:>20s}" for c in cells))
    for name, r in results.items():
        print(
            f"  {name:20s}: FAR=0 needs similarity > {1 - r['t_far0']:.3f} (TAR {r['tar_far0']:.3f}); "
            f"FAR=1e-3 at > {1 - r['t_far1e3']:.3f} (TAR {r['tar_far1e3']:.3f})"
        )
    write_figures(args.out, engine.descriptor_backend, sets, results, args)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


def write_figures(
    out: Path,
    descriptor: str,
    sets: dict[str, PairSet],
    results: dict[str, dict[str, float]],
    args: argparse.Namespace,
) -> None:
    """Write the measured rates at the configured match threshold for the DPIA inputs."""
    import json
    from datetime import UTC, datetime

    threshold = Settings.from_env().match_threshold
    d = 1 - threshold
    figures = {
        name: {
            "same_pairs": len(pairs.same),
            "different_pairs": len(pairs.different),
            "tar": round(float(np.mean(np.asarray(pairs.same) <= d)), 4),
            "far": round(float(np.mean(np.asarray(pairs.different) <= d)), 5),
            "similarity_for_far0": round(1 - results[name]["t_far0"], 3),
        }
        for name, pairs in sets.items()
    }
    record = accuracy_record(
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        descriptor=descriptor,
        match_threshold=threshold,
        sets=figures,
        clip=args.clip.name,
        every=args.every,
        min_face_px=args.min_face,
    )
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
