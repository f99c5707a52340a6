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
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.models import DetectedFace, FaceCrop, FaceEvent, utcnow
from core.schema import event_to_json
from deeplens_lambda.detectors import Detector, RegionDetector
from deeplens_lambda.tracker import Candidate, Emission, Tracker, TrackerConfig

if TYPE_CHECKING:
    from deeplens_lambda.consent_gate import UnmatchedGate

#: The most bytes one serialised event (``core.schema.event_to_json``) may take:
#: AWS IoT Core refuses MQTT messages over 128 KB, and the rest is headroom for
#: the topic and MQTT framing.
EVENT_BUDGET_BYTES = 120_000
#: JPEG qualities tried in turn until an emission's crops fit one event; below
#: the last one the crops are split over several events of the same track.
JPEG_QUALITIES = (90, 80, 70)
#: Scan regions instead of the whole frame only if they cost less than this
#: fraction of a full pass: where regions save little (small frames, crowds),
#: the full pass is as cheap and sees everything.
MAX_REGION_COST = 0.6


@dataclass(frozen=True, slots=True)
class EdgeContext:
    """Where the frames come from and how often to run the detector."""

    store_id: str
    camera_id: str
    zone: str
    every: int = 3  # run the detector on every Nth frame, track in between
    #: scan the whole frame at least this often (seconds); on the detection frames
    #: in between, a detector that can (YuNet) scans only around live tracks; 0 = always whole
    full_frame_seconds: float = 0.5
    jpeg_quality: int = JPEG_QUALITIES[0]
    max_event_bytes: int = EVENT_BUDGET_BYTES

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")
        if self.full_frame_seconds < 0:
            raise ValueError("full_frame_seconds must be >= 0")


@dataclass(slots=True)
class PipelineStats:
    """Counters for the replay summary and the bench."""

    frames: int = 0
    detect_frames: int = 0
    region_frames: int = 0  # detection frames scanned only around live tracks
    faces: int = 0
    events: int = 0
    tracks: int = 0


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _face_crop(cand: Candidate, quality: int) -> FaceCrop:
    return FaceCrop(
        jpeg=encode_jpeg(cand.crop, quality),
        bbox=cand.bbox,
        face=cand.face,
        captured_at=cand.captured_at,
        confidence=float(min(1.0, max(0.0, cand.confidence))),
        quality=float(min(1.0, max(0.0, cand.quality.total))),
        landmarks=cand.landmarks,
    )


def _event(emission: Emission, crops: list[FaceCrop], context: EdgeContext, detector_name: str) -> FaceEvent:
    best = emission.candidate
    return FaceEvent.from_crops(
        event_id=str(uuid.uuid4()),
        store_id=context.store_id,
        camera_id=context.camera_id,
        zone=context.zone,
        frame_width=best.frame_width,
        frame_height=best.frame_height,
        detector=detector_name,
        track_id=emission.track_id,
        crops=crops,
    )


def build_events(emission: Emission, context: EdgeContext, detector_name: str) -> list[FaceEvent]:
    """Schema-v2 FaceEvents for a tracker emission, each at most ``context.max_event_bytes`` serialised.

    The crops (already scaled so the face is at most
    :data:`deeplens_lambda.tracker.MAX_FACE_SIDE_PX`) are JPEG-encoded at
    ``context.jpeg_quality``; if the event is too large, at the lower
    :data:`JPEG_QUALITIES`; if still too large, the crops are split, best first,
    over several events of the same ``track_id`` (the backend joins them).
    """
    qualities = [q for q in JPEG_QUALITIES if q < context.jpeg_quality]
    crops: list[FaceCrop] = []
    for quality in (context.jpeg_quality, *qualities):
        crops = [_face_crop(c, quality) for c in emission.candidates]
        event = _event(emission, crops, context, detector_name)
        if len(event_to_json(event)) <= context.max_event_bytes:
            return [event]
    events: list[FaceEvent] = []
    group: list[FaceCrop] = []
    for crop in crops:  # at the lowest quality: pack greedily, best first
        trial = _event(emission, [*group, crop], context, detector_name)
        if group and len(event_to_json(trial)) > context.max_event_bytes:
            events.append(_event(emission, group, context, detector_name))
            group = [crop]
        else:
            group.append(crop)
    last = _event(emission, group, context, detector_name)
    if len(event_to_json(last)) > context.max_event_bytes:
        raise ValueError(f"one face crop does not fit in {context.max_event_bytes} bytes")
    return [*events, last]


def build_event(emission: Emission, context: EdgeContext, detector_name: str) -> FaceEvent:
    """The first of :func:`build_events` (for callers that want one event per emission)."""
    return build_events(emission, context, detector_name)[0]


def detect_faces(
    frame: np.ndarray, detector: Detector, tracker: Tracker, context: EdgeContext, when: datetime, index: int
) -> tuple[list[DetectedFace], bool]:
    """Faces of a detection frame, and whether only regions around live tracks were scanned.

    The whole frame is scanned every ``context.full_frame_seconds`` (newcomers
    are found there); on the detection frames in between, a
    :class:`~deeplens_lambda.detectors.RegionDetector` scans only the regions
    where live tracks can be (:meth:`Tracker.search_regions`), unless they
    would cost over :data:`MAX_REGION_COST` of a full pass. With no live
    track there is nothing to scan until the next full pass.
    """
    last = tracker.last_full_scan
    due = last is None or (when - last).total_seconds() >= context.full_frame_seconds - 1e-6
    if not due and isinstance(detector, RegionDetector):
        height, width = frame.shape[:2]
        regions = tracker.search_regions(index, width, height, when)
        if detector.region_cost(width, height, regions) < MAX_REGION_COST:
            return (detector.detect_regions(frame, regions) if regions else []), True
    tracker.last_full_scan = when
    return detector.detect(frame), False


def process_frame(
    frame: np.ndarray | None,
    detector: Detector,
    tracker: Tracker,
    context: EdgeContext,
    *,
    captured_at: datetime | None = None,
    stats: PipelineStats | None = None,
    gate: UnmatchedGate | None = None,
) -> list[FaceEvent]:
    """Process one BGR frame; return the FaceEvents it completes (usually none).

    With a ``gate`` (``unmatched = "anonymous"``, :mod:`deeplens_lambda.consent_gate`)
    only tracks matched to a consented customer send crops; the others become one
    anonymous sighting event each when they end.

    The detector runs on frames ``0, N, 2N...`` (``context.every``); on the
    others the tracker only advances its frame counter and predicts boxes, so
    ``frame`` may be ``None`` there (a source can skip converting those frames).
    """
    when = captured_at or utcnow()
    index = tracker.step()
    if stats is not None:
        stats.frames += 1
    if index % context.every:
        return []
    if frame is None:
        raise ValueError(f"frame {index} is a detection frame and needs its pixels")
    detections, regional = detect_faces(frame, detector, tracker, context, when, index)
    emissions = tracker.update(detections, frame, when, frame_index=index)
    anonymous: list[FaceEvent] = []
    if gate is not None:
        emissions, anonymous = gate.split(emissions, tracker.tracks, context, detector.name)
    events = [ev for e in emissions for ev in build_events(e, context, detector.name)] + anonymous
    if stats is not None:
        stats.detect_frames += 1
        stats.region_frames += int(regional)
        stats.faces += len(detections)
        stats.events += len(events)
        stats.tracks = tracker.tracks_started
    return events


def flush(
    detector: Detector,
    tracker: Tracker,
    context: EdgeContext,
    stats: PipelineStats | None = None,
    gate: UnmatchedGate | None = None,
) -> list[FaceEvent]:
    """End of stream: emit the crops live tracks still owe (and, with a gate, their sightings)."""
    emissions = tracker.flush()
    anonymous: list[FaceEvent] = []
    if gate is not None:
        emissions, anonymous = gate.flush(emissions, context, detector.name)
    events = [ev for e in emissions for ev in build_events(e, context, detector.name)] + anonymous
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
    #: ``unmatched = "anonymous"``: send crops only of consented customers (None: send all).
    gate: UnmatchedGate | None = None
    tracker: Tracker = field(init=False)
    stats: PipelineStats = field(default_factory=PipelineStats)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.tracker_config, camera_id=self.context.camera_id)

    def process(self, frame: np.ndarray | None, captured_at: datetime | None = None) -> list[FaceEvent]:
        """See :func:`process_frame`."""
        return process_frame(
            frame,
            self.detector,
            self.tracker,
            self.context,
            captured_at=captured_at,
            stats=self.stats,
            gate=self.gate,
        )

    def flush(self) -> list[FaceEvent]:
        """See :func:`flush`."""
        return flush(self.detector, self.tracker, self.context, self.stats, self.gate)
