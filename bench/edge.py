"""Edge pipeline benchmark: prints figures, asserts nothing.

    python bench/edge.py            # ~1-2 minutes on one core

1. Frames/s of decode -> detect -> track -> crop -> JPEG encode -> FaceEvent JSON
   on a generated 640x480 clip, pinned to one CPU core, for several detector
   settings (downscale, detect every Nth frame).
2. Share of faces missed compared with detecting every frame: a ground-truth
   face counts as covered in a frame when a live track box overlaps it
   (IoU >= 0.3); also how many of the people got at least one event.
3. The full path into the local store (edge + in-process ingest with the real
   dlib recognition) on a 60 s clip, as a multiple of real time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pin_one_core() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    cv2.setNumThreads(1)


def edge_run(clip, every: int, downscale: float) -> dict[str, float]:
    """Run the edge pipeline over ``clip``; measure fps and coverage of the ground truth."""
    from core.schema import event_to_json
    from deeplens_lambda.detector_factory import create_detector
    from deeplens_lambda.pipeline import EdgeContext, EdgePipeline
    from simulator.sources import open_source

    source = open_source(clip.path)
    pipe = EdgePipeline(
        create_detector("hog", downscale=downscale),
        EdgeContext(store_id="store-1", camera_id="bench", zone="entrance", every=every),
    )
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 3, 2, 10, tzinfo=UTC)
    covered = 0
    faces = 0
    events = []
    nbytes = 0
    began = time.perf_counter()
    for index, (frame, position) in enumerate(source.frames()):
        for event in pipe.process(frame, base + timedelta(seconds=position)):
            nbytes += len(event_to_json(event))  # what a transport would send
            events.append(event)
        boxes = list(pipe.tracker.current_boxes().values())
        for _person, truth in clip.truth[index]:
            faces += 1
            if any(b.iou(truth) >= 0.3 for b in boxes):
                covered += 1
    for event in pipe.flush():
        nbytes += len(event_to_json(event))
        events.append(event)
    elapsed = time.perf_counter() - began
    source.close()
    people_with_event = set()
    for event in events:
        t = (event.captured_at - base).total_seconds()
        index = min(len(clip.truth) - 1, round(t * clip.fps))
        best = max(clip.truth[index], key=lambda pb: pb[1].iou(event.bbox), default=None)
        if best is not None and best[1].iou(event.bbox) > 0.3:
            people_with_event.add(best[0])
    return {
        "fps": pipe.stats.frames / elapsed,
        "ms_per_frame": 1000 * elapsed / pipe.stats.frames,
        "coverage": covered / faces if faces else 0.0,
        "events": len(events),
        "people": len(people_with_event),
        "kb_per_event": nbytes / 1024 / max(1, len(events)),
    }


def decode_only(clip) -> float:
    from simulator.sources import open_source

    source = open_source(clip.path)
    began = time.perf_counter()
    n = sum(1 for _ in source.frames())
    source.close()
    return n / (time.perf_counter() - began)


def main() -> None:
    pin_one_core()
    from simulator.synth import render_clip, walk_script

    work = Path(tempfile.mkdtemp(prefix="storelens-bench-"))
    people = ["obama", "biden", "grace", "astronaut", "ana", "dev", "emma", "ben"]
    clip = render_clip(work / "edge.mp4", walk_script(people, duration=3.5, gap=0.5, seed=5), fps=15.0)
    print(f"clip: {clip.frames} frames 640x480 at {clip.fps:g} fps, {len(clip.people)} people, one core")
    print(f"decode only: {decode_only(clip):.0f} fps")
    print(
        f"{'setting':<26}{'fps':>7}{'ms/frame':>10}{'covered':>9}{'missed*':>9}{'people':>8}"
        f"{'events':>8}{'KB/event':>9}"
    )
    baselines: dict[float, float] = {}
    for downscale, every in [(1.0, 1), (0.5, 1), (0.5, 2), (0.5, 3), (0.5, 4), (0.5, 6)]:
        r = edge_run(clip, every, downscale)
        if every == 1:
            baselines[downscale] = r["coverage"]
        base = baselines.get(downscale, r["coverage"])
        missed = max(0.0, 1 - r["coverage"] / base) if base else 0.0
        print(
            f"{f'hog x{downscale:g}, detect every {every}':<26}{r['fps']:>7.1f}{r['ms_per_frame']:>10.1f}"
            f"{r['coverage']:>9.1%}{missed:>9.1%}{r['people']:>5}/{len(clip.people):<2}{r['events']:>8}"
            f"{r['kb_per_event']:>9.1f}"
        )
    print(
        "* missed: share of ground-truth faces covered when detecting every frame (same scale)"
        " that are not covered by a track box"
    )

    # ---- 60 s clip into the local store, in process ------------------------------
    from core.bootstrap import build_services
    from core.settings import Settings
    from deeplens_lambda.publishers import InProcessPublisher
    from simulator.replay import replay

    many = [*people, "chloe", "finn", "obama", "grace", "biden"]
    script = walk_script(many, duration=3.5, gap=0.6, seed=9)
    long_clip = render_clip(work / "sixty.mp4", script, seconds=60.0)

    class TimedPublisher(InProcessPublisher):
        """In-process publishing that also adds up the time spent in ingest."""

        spent: float = 0.0

        def publish(self, event) -> None:  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            super().publish(event)
            self.spent += time.perf_counter() - began

    for every in (3, 4):
        services = build_services(Settings.from_env({}, data_dir=work / f"data{every}", secret_key="bench"))
        try:
            # warm up the face models so the figure is the steady state, not model loading
            from core.local.engine import get_engine

            get_engine().load()
            publisher = TimedPublisher(services.ingest, source="bench")
            summary = replay(
                long_clip.path, publisher, camera_id="cam-entrance", zone="entrance", every=every
            )
        finally:
            services.close()
        print(
            f"\n60 s clip into the local store, detect every {every} (edge + in-process ingest with "
            f"recognition, one core): {summary.seconds:.1f} s wall = {60.0 / summary.seconds:.1f}x "
            "real time; "
            f"{summary.frames} frames, {summary.events} events, {summary.visits} visits, "
            f"{summary.pending_identities} pending identities; ingest {publisher.spent:.1f} s "
            f"(~{1000 * publisher.spent / max(1, summary.events):.0f} ms per event)"
        )


if __name__ == "__main__":
    main()
