"""Replay a video through the exact edge code path into a publisher.

Only the frame source (``cv2.VideoCapture`` instead of ``awscam.getLastFrame``)
and the publisher differ from the device.

>>> summary = replay("store.mp4", InProcessPublisher(services.ingest), camera_id="cam-1",
...                  zone="entrance")                                  # doctest: +SKIP
>>> summary.events, summary.pending_identities                         # doctest: +SKIP
(4, 4)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.models import FaceEvent, IngestOutcome, IngestResult, utcnow
from core.ports import EventPublisher
from deeplens_lambda.consent_gate import UnmatchedGate
from deeplens_lambda.detector_factory import create_detector
from deeplens_lambda.detectors import DEFAULT_DETECTOR, DEFAULT_MIN_FACE_PX, Detector
from deeplens_lambda.pipeline import EdgeContext, EdgePipeline
from deeplens_lambda.tracker import DEFAULT_CROPS_PER_TRACK, TrackerConfig
from simulator.sources import open_source


@dataclass
class ReplayProgress:
    """Passed to the progress callback after every frame."""

    frame: int
    total: int | None
    events: int
    fps: float


@dataclass
class ReplaySummary:
    """What a replay did (printed at the end of ``python -m simulator replay``)."""

    source: str
    frames: int = 0
    detect_frames: int = 0
    faces: int = 0
    tracks: int = 0
    events: int = 0
    seconds: float = 0.0
    video_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    pending_ids: set[str] = field(default_factory=set)
    customer_ids: set[str] = field(default_factory=set)
    rejected: int = 0
    stopped: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def speedup(self) -> float:
        """Video time processed per wall-clock second."""
        return self.video_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def visits(self) -> int:
        return self.outcomes.get(IngestOutcome.VISIT.value, 0)

    @property
    def review_items(self) -> int:
        return self.outcomes.get(IngestOutcome.REVIEW.value, 0)

    @property
    def pending_identities(self) -> int:
        return len(self.pending_ids)

    def lines(self) -> list[str]:
        return [
            f"source           {self.source}",
            f"frames           {self.frames} ({self.detect_frames} detected) in {self.seconds:.1f} s "
            f"= {self.fps:.1f} fps, {self.speedup:.1f}x real time",
            f"faces detected   {self.faces}",
            f"tracks           {self.tracks}",
            f"events           {self.events}" + (f" ({self.rejected} rejected)" if self.rejected else ""),
            f"visits           {self.visits}",
            f"review items     {self.review_items}",
            f"pending ids      {self.pending_identities}",
            *self._anonymous_lines(),
        ] + (["stopped early"] if self.stopped else [])

    def _anonymous_lines(self) -> list[str]:
        # Consent-first mode, or an edge with unmatched = "anonymous" (docs/edge.md).
        n = self.outcomes.get(IngestOutcome.ANONYMOUS.value, 0)
        return [f"anonymous        {n}"] if n else []


class CollectingPublisher:
    """Wraps a publisher, recording ingest results when the inner one reports them."""

    def __init__(self, inner: EventPublisher, summary: ReplaySummary) -> None:
        self.inner = inner
        self.summary = summary
        previous = getattr(inner, "on_result", None)

        def on_result(result: IngestResult) -> None:
            outcome = str(result.outcome)
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            if result.pending_id:
                summary.pending_ids.add(result.pending_id)
            if result.customer_id and result.outcome == IngestOutcome.VISIT:
                summary.customer_ids.add(result.customer_id)
            if previous is not None:
                previous(result)

        if hasattr(inner, "on_result"):
            inner.on_result = on_result

    def publish(self, event: FaceEvent) -> None:
        self.inner.publish(event)

    def close(self) -> None:
        self.summary.rejected = int(getattr(self.inner, "rejected", 0))


def replay(
    source: str | int | Path,
    publisher: EventPublisher,
    *,
    store_id: str = "store-1",
    camera_id: str = "cam-1",
    zone: str = "entrance",
    every: int = 3,
    detector: Detector | str = DEFAULT_DETECTOR,
    detector_options: dict[str, Any] | None = None,
    tracker_config: TrackerConfig | None = None,
    min_face_px: int = DEFAULT_MIN_FACE_PX,
    crops_per_track: int = DEFAULT_CROPS_PER_TRACK,
    speed: str = "max",
    start_time: datetime | None = None,
    progress: Callable[[ReplayProgress], None] | None = None,
    stop: threading.Event | None = None,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
    max_frames: int | None = None,
    gate: UnmatchedGate | None = None,
) -> ReplaySummary:
    """Run ``source`` through the edge pipeline and publish every event.

    ``speed`` is ``"max"`` (as fast as possible) or ``"realtime"`` (sleep to the
    recording's frame times). Files are stamped ``start_time + position`` (default
    now), live sources with the clock. ``stop`` ends the replay early (the
    tracks still open are flushed). ``progress`` is called after each frame.
    The publisher is not closed here. ``min_face_px`` (camera pixels) sets the
    detector's input scale and the smallest face a crop may show;
    ``crops_per_track`` is K, the crops sent per track (both ignored for the
    parts given explicitly as ``detector``/``tracker_config``). ``gate``
    (:class:`deeplens_lambda.consent_gate.UnmatchedGate`) is the edge's
    ``unmatched = "anonymous"``: only matched tracks send crops.
    """
    if speed not in ("max", "realtime"):
        raise ValueError("speed must be 'max' or 'realtime'")
    if isinstance(detector, str):
        det = create_detector(detector, **{"min_face_px": min_face_px, **(detector_options or {})})
    else:
        det = detector
    if tracker_config is None:
        tracker_config = TrackerConfig(min_face_px=min_face_px, crops_per_track=crops_per_track)
    context = EdgeContext(store_id=store_id, camera_id=camera_id, zone=zone, every=every)
    pipeline = EdgePipeline(det, context, tracker_config, gate)
    frames = open_source(source)
    summary = ReplaySummary(source=str(source))
    sink = CollectingPublisher(publisher, summary)
    base = start_time or utcnow()
    began = time.perf_counter()
    try:
        # Without an on_frame callback only detection frames are converted to pixels.
        wanted = None if on_frame is not None else (lambda i: (i % every) == 0)
        for index, (frame, position) in enumerate(frames.sparse_frames(wanted)):
            if (stop is not None and stop.is_set()) or (max_frames is not None and index >= max_frames):
                summary.stopped = stop is not None and stop.is_set()
                break
            if speed == "realtime" and not frames.live:  # live sources pace themselves
                delay = position - (time.perf_counter() - began)
                if delay > 0:
                    time.sleep(delay)
            when = utcnow() if frames.live else base + timedelta(seconds=position)
            for event in pipeline.process(frame, when):
                sink.publish(event)
            summary.video_seconds = position + 1.0 / frames.fps
            if on_frame is not None and frame is not None:
                on_frame(index, frame)
            if progress is not None:
                elapsed = time.perf_counter() - began
                progress(
                    ReplayProgress(
                        index + 1,
                        frames.frame_count,
                        pipeline.stats.events,
                        (index + 1) / elapsed if elapsed > 0 else 0.0,
                    )
                )
        for event in pipeline.flush():
            sink.publish(event)
    finally:
        frames.close()
        sink.close()
    summary.seconds = time.perf_counter() - began
    stats = pipeline.stats
    summary.frames = stats.frames
    summary.detect_frames = stats.detect_frames
    summary.faces = stats.faces
    summary.tracks = stats.tracks
    summary.events = stats.events
    return summary
