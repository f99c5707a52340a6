"""Edge loop benchmark on real video: prints figures, asserts nothing.

    python bench/edge.py            # a few minutes on one core

For the walkway clip (``../shared/data/walkway/walkway-1080p.mp4``, 1080p, 25 fps,
nine people), a 640x360 copy and a 640x360 window of it made at run time, with YuNet (default) and the
HOG fallback, at a few detection cadences: frames/s and multiple of real time
of decode -> detect -> track -> crop -> JPEG -> FaceEvent JSON (no ingest),
pinned to one CPU core; faces detected, tracks started, tracks that emitted
events (the README's truth is nine people), events and the largest event, and
how many detection frames were scanned only around live tracks ("regions";
``full_frame_seconds=0`` scans every detection frame whole). Decoding alone is
timed with the default source (PyAV, skipping frames nobody needs) and with
OpenCV (every frame decoded).
Then YuNet's smallest reliable face: the walkway group photo scaled so its six
faces are 20..10 px wide (what ``YUNET_MIN_FACE_PX`` is chosen from).
Last, the whole ``python -m simulator replay <clip> --speed max`` into a fresh
local backend (start-up, decode, edge, ingest with embedding), on the same core,
a few times: wall and user+sys CPU seconds against the clip's 4.2 s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WALKWAY = ROOT / ".." / "shared" / "data" / "walkway"


def pin_one_core() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    cv2.setNumThreads(1)


def downscaled_copy(
    source: Path, out: Path, width: int = 640, height: int = 360, window: tuple[int, int] | None = None
) -> Path:
    """The clip resized to ``width`` x ``height`` (a low-resolution camera), or a window of
    that size cut at ``window`` = (left, top) (a 640x360 camera nearer the people: same face sizes)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if window is not None:
            x, y = window
            writer.write(frame[y : y + height, x : x + width])
        else:
            writer.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return out


def decode_only(path: Path, every: int, opencv: bool = False) -> tuple[float, float, int]:
    """Frames/s of decoding alone (pixels only for every Nth frame), by wall clock and by CPU time,
    and the frames actually decoded (PyAV skips unwanted frames no other frame needs)."""
    import cv2

    from simulator.sources import FrameSource, open_source

    if opencv:
        capture = cv2.VideoCapture(str(path))
        source: Any = FrameSource(str(path), capture, 25.0, None, False, 0, 0)
    else:
        source = open_source(path)
    began, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in source.sparse_frames(lambda i: i % every == 0))
    wall, cpu = n / (time.perf_counter() - began), n / (time.process_time() - cpu)
    source.close()
    return wall, cpu, int(getattr(source, "decoded", n))


def edge_run(
    path: Path, detector: str, every: int, full_frame_seconds: float | None = None
) -> dict[str, float]:
    from core.schema import event_to_json
    from deeplens_lambda.detector_factory import create_detector
    from deeplens_lambda.pipeline import EdgeContext, EdgePipeline
    from simulator.sources import open_source

    det = create_detector(detector)  # default options: what a user gets with no flags
    source = open_source(path)
    context = EdgeContext(store_id="store-1", camera_id="bench", zone="entrance", every=every)
    if full_frame_seconds is not None:
        context = dataclasses.replace(context, full_frame_seconds=full_frame_seconds)
    pipe = EdgePipeline(det, context)
    base = datetime(2026, 3, 2, 10, tzinfo=UTC)
    sizes: list[int] = []
    tracks: set[str] = set()
    began = time.perf_counter()
    cpu = time.process_time()
    for frame, position in source.sparse_frames(lambda i: i % every == 0):
        for event in pipe.process(frame, base + timedelta(seconds=position)):
            sizes.append(len(event_to_json(event)))  # what a transport would send
            tracks.add(event.track_id)
    for event in pipe.flush():
        sizes.append(len(event_to_json(event)))
        tracks.add(event.track_id)
    elapsed = time.perf_counter() - began
    cpu_seconds = time.process_time() - cpu
    video_seconds = pipe.stats.frames / source.fps
    source.close()
    return {
        "fps": pipe.stats.frames / elapsed,
        "x_real_time": video_seconds / elapsed,
        "x_real_time_cpu": video_seconds / cpu_seconds,
        "faces": pipe.stats.faces,
        "tracks": pipe.stats.tracks,
        "emitting": len(tracks),
        "events": len(sizes),
        "max_kb": max(sizes, default=0) / 1000,
        "regions": pipe.stats.region_frames,
        "detect_frames": pipe.stats.detect_frames,
    }


def smallest_reliable_face() -> None:
    import cv2
    import numpy as np
    import yuface

    from deeplens_lambda.detectors import resize_for_detection

    image = cv2.imread(str(WALKWAY / "multiface.jpg"))
    print("\nYuNet on multiface.jpg (six faces, ~80 px) scaled so the faces are N px wide:")
    for target in (20, 16, 14, 12, 10):
        small = np.ascontiguousarray(resize_for_detection(image, target / 80.0))
        confs, _, _ = yuface.detect(small, conf=0.5)
        scores = sorted((int(c) for c in confs), reverse=True)
        print(f"  {target:>2} px: {len(scores)} boxes >= 0.5, scores {scores}")


def replay_runs(clip: Path, runs: int = 3) -> None:
    """The whole replay as a user runs it, in a fresh data dir each time, on this process's core."""
    print(f"\nreplay of {clip.name} at default settings, start-up and ingest included, one core:")
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="storelens-bench-replay-") as data:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "simulator",
                    "replay",
                    str(clip),
                    "--speed",
                    "max",
                    "--data-dir",
                    data,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            wall = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        pending = re.search(r"pending ids\s+(\d+)", out)
        print(
            f"  wall {wall:.2f} s = {4.2 / wall:.2f}x real time; user+sys {cpu:.2f} s = {4.2 / cpu:.2f}x; "
            f"pending identities {pending.group(1) if pending else '?'} (truth 9)"
        )


def main() -> None:
    pin_one_core()
    clip = WALKWAY / "walkway-1080p.mp4"
    work = Path(tempfile.mkdtemp(prefix="storelens-bench-"))
    small = downscaled_copy(clip, work / "walkway-640x360.mp4")
    window = downscaled_copy(clip, work / "walkway-window.mp4", window=(760, 480))
    print(f"walkway clip, one core, load average {os.getloadavg()[0]:.1f} (wall figures scale with load;")
    print("'cpu x' divides by the process's CPU time, closer to what an idle core does)")
    head = f"{'clip':<10}{'setting':<26}{'fps':>7}{'x real':>8}{'cpu x':>7}{'faces':>7}{'tracks':>8}"
    print(head + f"{'emitting':>10}{'events':>8}{'max KB':>8}{'regions':>9}")
    for name, path in (("1080p", clip), ("640x360", small), ("640 win", window)):
        for every in (3, 6):
            for opencv in (False, True):
                wall, cpu, decoded = decode_only(path, every, opencv)
                label = f"decode{' opencv' if opencv else ''}, every {every}"
                print(
                    f"{name:<10}{label:<26}{wall:>7.1f}{wall / 25:>8.2f}{cpu / 25:>7.2f}"
                    f"  ({decoded} of 105 frames decoded)"
                )
        runs: tuple[tuple[str, int, float | None], ...] = (
            ("yunet", 3, None),
            ("yunet", 3, 0.0),
            ("yunet", 4, None),
            ("yunet", 6, None),
            ("hog", 3, None),
        )
        for detector, every, full in runs:
            r = edge_run(path, detector, every, full)
            label = f"{detector} every {every}" + (", all full" if full == 0.0 else "")
            regions = f"{r['regions']:.0f}/{r['detect_frames']:.0f}"
            print(
                f"{name:<10}{label:<26}{r['fps']:>7.1f}{r['x_real_time']:>8.2f}"
                f"{r['x_real_time_cpu']:>7.2f}{r['faces']:>7.0f}{r['tracks']:>8.0f}{r['emitting']:>10.0f}"
                f"{r['events']:>8.0f}{r['max_kb']:>8.1f}{regions:>9}"
            )
    print("truth: 9 people show a face of >= 40 px in the 1080p clip (README); in the 640x360 copy faces")
    print("are 13-47 px, so at the default min_face_px=40 only the largest qualify. '640 win' is a")
    print("640x360 window of the 1080p clip (faces 40-110 px, people walk in and out of it).")
    smallest_reliable_face()
    replay_runs(clip)


if __name__ == "__main__":
    main()
