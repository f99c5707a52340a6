"""process_frame with the real HOG detector on composited frames: cadence, events, occlusion, return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from core.schema import event_to_json, parse_event
from deeplens_lambda.detectors import DlibHogDetector
from deeplens_lambda.pipeline import EdgeContext, PipelineStats, process_frame
from deeplens_lambda.pipeline import flush as flush_pipeline
from deeplens_lambda.tracker import Tracker
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


def run(frames: list[np.ndarray], every: int = 3):  # type: ignore[no-untyped-def]
    detector = CountingDetector()
    tracker = Tracker(camera_id="cam-1")
    context = EdgeContext(store_id="store-1", camera_id="cam-1", zone="entrance", every=every)
    stats = PipelineStats()
    events = []
    for i, frame in enumerate(frames):
        when = T0 + timedelta(seconds=i / FPS)
        events += process_frame(frame, detector, tracker, context, captured_at=when, stats=stats)
    events += flush_pipeline(detector, tracker, context, stats)
    return events, stats, detector, tracker


def walking(
    person: str, n: int, x0: float = 140.0, step: float = 6.0, hidden: range = range(0)
) -> list[np.ndarray]:
    bg = store_background()
    return [
        bg.copy() if i in hidden else compose(bg, [(person, (x0 + step * i, 240.0), 170)])[0]
        for i in range(n)
    ]


def test_detects_every_nth_frame_and_emits_a_valid_event() -> None:
    events, stats, detector, _ = run(walking("grace", 45), every=3)
    assert detector.calls == stats.detect_frames == 15
    assert stats.frames == 45
    assert len(events) == 1
    event = parse_event(event_to_json(events[0]), min_face_px=40)  # what ingest will check
    assert event.camera_id == "cam-1" and event.zone == "entrance"
    assert T0 <= event.captured_at <= T0 + timedelta(seconds=45 / FPS)
    crop = cv2.imdecode(np.frombuffer(event.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[0] > event.bbox.height  # face plus margin
    assert (event.frame_width, event.frame_height) == (640, 480)


def test_occlusion_keeps_one_track_and_leaving_makes_two() -> None:
    _, stats, _, _ = run(walking("biden", 60, hidden=range(24, 30)))  # hidden for 0.4 s
    assert stats.tracks == 1
    events, stats, _, _ = run(walking("biden", 90, step=2.0, hidden=range(25, 65)))  # gone for 2.7 s
    assert stats.tracks == 2
    assert len({e.track_id for e in events}) == 2
