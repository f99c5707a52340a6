"""process_frame with the real HOG detector on composited frames: cadence, events, occlusion, return;
schema-v2 events within the message budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from core.models import BoundingBox, DetectedFace
from core.schema import event_to_json, parse_event
from deeplens_lambda.detectors import DlibHogDetector, YuNetDetector
from deeplens_lambda.pipeline import (
    EVENT_BUDGET_BYTES,
    EdgeContext,
    PipelineStats,
    build_events,
    process_frame,
)
from deeplens_lambda.pipeline import flush as flush_pipeline
from deeplens_lambda.tracker import Tracker, TrackerConfig
from simulator.synth import compose, store_background

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FPS = 15.0


class CountingDetector(DlibHogDetector):
    """The real HOG detector, counting how often the pipeline calls it."""

    def __init__(self) -> None:
        super().__init__(downscale=0.5)
        self.calls = 0

    def detect(self, frame: np.ndarray):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().detect(frame)


class CountingYuNet(YuNetDetector):
    """The real YuNet detector, counting full-frame and region scans."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.region_calls = 0

    def detect(self, frame: np.ndarray):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().detect(frame)

    def detect_regions(self, frame: np.ndarray, regions):  # type: ignore[no-untyped-def]
        self.region_calls += 1
        return super().detect_regions(frame, regions)


def run(frames: list[np.ndarray], every: int = 3, detector=None, full_frame_seconds: float = 0.35):  # type: ignore[no-untyped-def]
    detector = detector or CountingDetector()
    tracker = Tracker(camera_id="cam-1")
    context = EdgeContext(
        store_id="store-1",
        camera_id="cam-1",
        zone="entrance",
        every=every,
        full_frame_seconds=full_frame_seconds,
    )
    stats = PipelineStats()
    events = []
    for i, frame in enumerate(frames):
        when = T0 + timedelta(seconds=i / FPS)
        events += process_frame(frame, detector, tracker, context, captured_at=when, stats=stats)
    events += flush_pipeline(detector, tracker, context, stats)
    return events, stats, detector, tracker


def walking(
    person: str, n: int, x0: float = 140.0, step: float = 6.0, hidden: range = range(0), face_px: int = 170
) -> list[np.ndarray]:
    bg = store_background()
    return [
        bg.copy() if i in hidden else compose(bg, [(person, (x0 + step * i, 240.0), face_px)])[0]
        for i in range(n)
    ]


def test_detects_every_nth_frame_and_emits_a_valid_event() -> None:
    events, stats, detector, _ = run(walking("grace", 45), every=3)
    assert detector.calls == stats.detect_frames == 15
    assert stats.frames == 45
    assert len({e.track_id for e in events}) == 1  # one person: a first event (~1 s) and a final one
    assert 1 <= len(events) <= 2
    event = parse_event(event_to_json(events[0]), min_face_px=40)  # what ingest will check
    assert event.schema_version == 2 and 1 <= len(event.crops) <= 5
    assert event.camera_id == "cam-1" and event.zone == "entrance"
    assert T0 <= event.captured_at <= T0 + timedelta(seconds=1.2)
    for c in event.crops:
        crop = cv2.imdecode(np.frombuffer(c.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert c.face is not None
        assert crop.shape[0] > c.face.height  # face plus margin
        assert c.face.right <= crop.shape[1] and c.face.bottom <= crop.shape[0]
    assert (event.frame_width, event.frame_height) == (640, 480)


def test_between_full_passes_yunet_scans_only_around_live_tracks() -> None:
    frames = walking("grace", 45, face_px=60)  # 3 s at 15 fps: a detection round every 0.2 s
    events, stats, detector, _ = run(frames, detector=CountingYuNet(), full_frame_seconds=0.35)
    # A full pass at 0, 0.4, 0.8 ... s; the rounds in between scan only around the track.
    assert (detector.calls, detector.region_calls, stats.region_frames) == (8, 7, 7)
    assert stats.tracks == 1 and len({e.track_id for e in events}) == 1
    whole, whole_stats, whole_detector, _ = run(frames, detector=CountingYuNet(), full_frame_seconds=0.0)
    assert (whole_detector.calls, whole_detector.region_calls, whole_stats.region_frames) == (15, 0, 0)
    assert whole_stats.tracks == 1 and len(whole) == len(events)
    assert abs(whole_stats.faces - stats.faces) <= 1


def test_with_nobody_in_view_the_rounds_between_full_passes_scan_nothing() -> None:
    frames = [store_background()] * 30
    events, stats, detector, _ = run(frames, detector=CountingYuNet(), full_frame_seconds=0.35)
    assert events == [] and stats.detect_frames == 10
    assert (detector.calls, detector.region_calls, stats.region_frames) == (5, 0, 5)


def test_occlusion_keeps_one_track_and_leaving_makes_two() -> None:
    _, stats, _, _ = run(walking("biden", 60, hidden=range(24, 30)))  # hidden for 0.4 s
    assert stats.tracks == 1
    events, stats, _, _ = run(walking("biden", 90, step=2.0, hidden=range(25, 65)))  # gone for 2.7 s
    assert stats.tracks == 2
    assert len({e.track_id for e in events}) == 2


def test_the_largest_event_fits_the_message_budget() -> None:
    """Ten crops of big, noisy (badly compressible) faces: split into events of one track, each <= budget."""
    rng = np.random.default_rng(7)
    tracker = Tracker(TrackerConfig(crops_per_track=10, first_emit_seconds=100, min_crop_gap_seconds=0.0))
    for i in range(40):
        frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
        index = tracker.step()
        box = BoundingBox(600, 200, 400, 480)  # a face far larger than the 160 px crops keep
        marks = ((750.0, 400.0), (850.0, 400.0), (800.0, 470.0), (760.0, 560.0), (840.0, 560.0))
        tracker.update([DetectedFace(box, 0.9, marks)], frame, T0 + timedelta(seconds=i / 5), index)
    (emission,) = tracker.flush()
    assert len(emission.candidates) == 10
    context = EdgeContext(store_id="store-1", camera_id="cam-1", zone="entrance")
    events = build_events(emission, context, "yunet")
    sizes = [len(event_to_json(e)) for e in events]
    assert all(size <= EVENT_BUDGET_BYTES for size in sizes), sizes
    assert len(events) > 1  # noise does not compress: the crops had to be split
    assert {e.track_id for e in events} == {emission.track_id}
    parsed = [parse_event(event_to_json(e), min_face_px=40) for e in events]
    assert sum(len(p.crops) for p in parsed) == 10
    crop = parsed[0].crops[0]
    assert crop.landmarks is not None and crop.face is not None
    image = cv2.imdecode(np.frombuffer(crop.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert max(crop.face.width, crop.face.height) <= 160  # downscaled: the embedder needs no more
    lx, ly = crop.landmarks[2]  # the nose, in crop pixels, inside the face box
    assert crop.face.left < lx < crop.face.right and crop.face.top < ly < crop.face.bottom
    assert image.shape[1] >= crop.face.right
