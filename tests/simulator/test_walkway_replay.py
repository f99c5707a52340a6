"""Real footage end to end: the walkway clip replayed at default settings into the local backend.

``../shared/data/walkway/walkway-1080p.mp4`` is a real 1080p clip of nine people
walking towards a camera (faces 40-140 px; ground truth in its README). A replay
at default settings (YuNet, K crops per track, the ONNX embedder, the per-person
decision) must create one pending identity per person (8-10: none split in two,
no two people merged), and a person enrolled from one frame of the clip must be
recognised as a visit while the others stay pending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from core.bootstrap import Services
from core.models import IngestOutcome
from deeplens_lambda.detector_factory import create_detector
from deeplens_lambda.pipeline import encode_jpeg
from deeplens_lambda.publishers import InProcessPublisher
from simulator.replay import replay

WALKWAY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "walkway"
CLIP = WALKWAY / "walkway-1080p.mp4"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _frame(index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(CLIP))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok, f"could not read frame {index} of {CLIP}"
    return frame


def _portrait_of_largest_face(frame: np.ndarray) -> bytes:
    """A JPEG of the largest face of ``frame`` with one face-width of margin (one face in it)."""
    faces = create_detector("yunet").detect(frame)
    assert faces, "YuNet finds faces in the frame"
    box = max(faces, key=lambda f: f.bbox.area).bbox
    height, width = frame.shape[:2]
    left, top = max(0, box.left - box.width), max(0, box.top - box.height)
    right, bottom = min(width, box.right + box.width), min(height, box.bottom + box.height)
    return encode_jpeg(frame[top:bottom, left:right], 95)


def test_replay_makes_one_pending_identity_per_person(services: Services) -> None:
    publisher = InProcessPublisher(services.ingest, source="simulator")
    summary = replay(CLIP, publisher, camera_id="cam-entrance", zone="entrance", start_time=START)
    assert summary.frames == 105
    assert publisher.rejected == 0, "every event the edge sends is accepted"
    # Nine people in the README: 8-10 identities means none split in two and no two merged.
    assert 8 <= summary.pending_identities <= 10, summary.lines()
    assert len(services.approvals.list_pending()) == summary.pending_identities
    assert summary.visits == 0  # nobody is enrolled


def test_person_enrolled_from_one_frame_gets_a_visit(services: Services) -> None:
    # Frame 80: the boy in the blue hoodie has the largest face of the clip.
    boy = services.customers.enroll("Walkway Boy", [_portrait_of_largest_face(_frame(80))])
    publisher = InProcessPublisher(services.ingest, source="simulator")
    outcomes: list[tuple[str, str | None]] = []
    publisher.on_result = lambda r: outcomes.append((str(r.outcome), r.customer_id))
    summary = replay(CLIP, publisher, camera_id="cam-entrance", zone="entrance", start_time=START)
    assert publisher.rejected == 0
    visits = [cid for outcome, cid in outcomes if outcome == IngestOutcome.VISIT.value]
    assert visits and set(visits) == {boy.customer_id}, outcomes
    assert services.repos.visits.by_customer(boy.customer_id), "the visit is stored"
    # The other people stay unknown: pending, not matched to him. (His track may open a
    # pending identity from its first, small crops; its later crops then recognise him.)
    assert 7 <= len(services.approvals.list_pending()) <= 9, summary.lines()
    assert all(p.customer_id is None for p in services.approvals.list_pending())
