"""The edge alone on real footage: the walkway clip (1080p, nine people) at default settings.

The README of ``../shared/data/walkway`` lists nine people with faces of 40 px
or more; a tenth man (left, walking away in profile) shows a 40-43 px YuNet
box for about a second. One track per person is the goal: none split, none
merged. Checked here by counting the tracks that emit events and by checking
that no track's crops jump across the frame (a merge of two people would).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from core.models import FaceEvent
from core.schema import event_to_json, parse_event
from deeplens_lambda.pipeline import EVENT_BUDGET_BYTES
from simulator.replay import replay

WALKWAY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "walkway"


class Collect:
    """A publisher that keeps the events (no backend: the edge alone)."""

    def __init__(self) -> None:
        self.events: list[FaceEvent] = []

    def publish(self, event: FaceEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def test_walkway_clip_gives_one_track_per_person() -> None:
    sink = Collect()
    summary = replay(WALKWAY / "walkway-1080p.mp4", sink, camera_id="cam-entrance", zone="entrance")
    assert summary.frames == 105
    tracks: dict[str, list[FaceEvent]] = {}
    for event in sink.events:
        tracks.setdefault(event.track_id, []).append(event)
    # 9 people in the README + the man walking away on the left; one occlusion split
    # (the man with glasses, hidden behind the older man while that man was hidden too).
    assert 9 <= len(tracks) <= 11, sorted(len(v) for v in tracks.values())
    for events in tracks.values():
        assert len(events) <= 4  # first + final (+ re-emits on long stays)
        crops = sorted((c for e in events for c in e.crops), key=lambda c: c.captured_at)
        for a, b in itertools.pairwise(crops):
            # One person between two crops: the face moves at most a few face widths per second.
            seconds = (b.captured_at - a.captured_at).total_seconds()
            (ax, ay), (bx, by) = a.bbox.center, b.bbox.center
            width = max(a.bbox.width, b.bbox.width)
            assert ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 <= width * (1.0 + 10.0 * seconds)
    for event in sink.events:
        raw = event_to_json(event)
        assert len(raw) <= EVENT_BUDGET_BYTES
        parsed = parse_event(raw, min_face_px=40)  # what ingest checks
        assert parsed.schema_version == 2 and parsed.detector == "yunet"
        assert all(c.landmarks is not None and c.face is not None for c in parsed.crops)
