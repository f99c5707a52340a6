"""The edge frame loop: detect every Nth frame, track in between, emit FaceEvents.

:func:`process_frame` is the one code path the device and the simulator share;
only the frame source and the publisher differ.

>>> pipe = EdgePipeline(detector, EdgeContext(store_id="store-1", camera_id="cam-1", zone="entrance"))
>>> for frame, ts in frames:                            # doctest: +SKIP
...     for event in pipe.process(frame, ts):
...         publisher.publish(event)
>>> for event in pipe.flush(): publisher.publish(event)  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from core.models import FaceEvent, utcnow
from deeplens_lambda.detectors import Detector
from deeplens_lambda.tracker import Emission, Tracker, TrackerConfig


@dataclass(frozen=True, slots=True)
class EdgeContext:
    """Where the frames come from and how often to run the detector."""

    store_id: str
    camera_id: str
    zone: str
    every: int = 3  # run the detector on every Nth frame, track in between
    jpeg_quality: int = 90
    max_crop_side: int = 480  # downscale larger crops so events stay small

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")


@dataclass(slots=True)
class PipelineStats:
    """Counters for the replay summary and the bench."""

    frames: int = 0
    detect_frames: int = 0
    faces: int = 0
    events: int = 0
    tracks: int = 0


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def build_event(emission: Emission, context: EdgeContext, detector_name: str) -> FaceEvent:
    """A FaceEvent v1 from a tracker emission: crop with margin, JPEG, fresh UUID."""
    cand = emission.candidate
    crop = cand.crop
    longest = max(crop.shape[:2])
    if longest > context.max_crop_side:
        scale = context.max_crop_side / longest
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return FaceEvent(
        event_id=str(uuid.uuid4()),
        store_id=context.store_id,
        camera_id=context.camera_id,
        zone=context.zone,
        captured_at=cand.captured_at,
        bbox=cand.bbox,
        frame_width=cand.frame_width,
        frame_height=cand.frame_height,
        detector=detector_name,
        confidence=float(min(1.0, max(0.0, cand.confidence))),
        track_id=emission.track_id,
        crop_jpeg=encode_jpeg(crop, context.jpeg_quality),
    )


def process_frame(
    frame: np.ndarray,
    detector: Detector,
    tracker: Tracker,
    context: EdgeContext,
    *,
    captured_at: datetime | None = None,
    stats: PipelineStats | None = None,
) -> list[FaceEvent]:
    """Process one BGR frame; return the FaceEvents it completes (usually none).

    The detector runs on frames ``0, N, 2N...`` (``context.every``); on the
    others the tracker only advances its frame counter and predicts boxes.
    """
    when = captured_at or utcnow()
    index = tracker.step()
    if stats is not None:
        stats.frames += 1
    if index % context.every:
        return []
    detections = detector.detect(frame)
    emissions = tracker.update(detections, frame, when, frame_index=index)
    events = [build_event(e, context, detector.name) for e in emissions]
    if stats is not None:
        stats.detect_frames += 1
        stats.faces += len(detections)
        stats.events += len(events)
        stats.tracks = tracker.tracks_started
    return events


def flush(
    detector: Detector, tracker: Tracker, context: EdgeContext, stats: PipelineStats | None = None
) -> list[FaceEvent]:
    """End of stream: emit the crops live tracks still owe."""
    events = [build_event(e, context, detector.name) for e in tracker.flush()]
    if stats is not None:
        stats.events += len(events)
        stats.tracks = tracker.tracks_started
    return events


@dataclass
class EdgePipeline:
    """A detector, a tracker and a context bundled with running statistics."""

    detector: Detector
    context: EdgeContext
    tracker_config: TrackerConfig | None = None
    tracker: Tracker = field(init=False)
    stats: PipelineStats = field(default_factory=PipelineStats)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.tracker_config, camera_id=self.context.camera_id)

    def process(self, frame: np.ndarray, captured_at: datetime | None = None) -> list[FaceEvent]:
        """See :func:`process_frame`."""
        return process_frame(
            frame, self.detector, self.tracker, self.context, captured_at=captured_at, stats=self.stats
        )

    def flush(self) -> list[FaceEvent]:
        """See :func:`flush`."""
        return flush(self.detector, self.tracker, self.context, self.stats)
