"""The tracker on synthetic motion: crossing, occlusion, leaving and returning, crop choice, limits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np

from core.models import BoundingBox, DetectedFace
from deeplens_lambda.tracker import Emission, Tracker, TrackerConfig, select_diverse

FPS = 15.0
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FRAME = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)


def box_at(cx: float, cy: float, size: int = 120) -> BoundingBox:
    return BoundingBox(round(cx - size / 2), round(cy - size / 2), size, size)


def textured(seed: int) -> np.ndarray:
    """A frame of its own (so crops taken from it differ from those of other frames)."""
    return np.random.default_rng(seed).integers(0, 255, (480, 640, 3), dtype=np.uint8)


def run(
    tracker: Tracker, per_frame: list[list[BoundingBox]], frames: list[np.ndarray] | None = None
) -> tuple[list[dict[str, BoundingBox]], list[Emission]]:
    """Feed detections frame by frame; return the track id -> box map after each frame."""
    seen: list[dict[str, BoundingBox]] = []
    emissions: list[Emission] = []
    for i, boxes in enumerate(per_frame):
        index = tracker.step()
        when = T0 + timedelta(seconds=i / FPS)
        frame = FRAME if frames is None else frames[i]
        emissions += tracker.update([DetectedFace(b, 0.9) for b in boxes], frame, when, frame_index=index)
        seen.append({tid: t.bbox for tid, t in tracker.tracks.items() if t.last_frame == index})
    emissions += tracker.flush()
    return seen, emissions


def owner(frame_tracks: dict[str, BoundingBox], box: BoundingBox) -> str:
    return max(frame_tracks, key=lambda tid: frame_tracks[tid].iou(box))


def test_two_people_crossing_keep_their_tracks() -> None:
    frames = []
    for i in range(60):  # A walks right, B walks left, at nearly the same height
        frames.append([box_at(100 + 8 * i, 240), box_at(540 - 8 * i, 250)])
    tracker = Tracker(TrackerConfig(first_emit_seconds=0.5))
    seen, emissions = run(tracker, frames)
    a_first, b_first = owner(seen[0], frames[0][0]), owner(seen[0], frames[0][1])
    assert a_first != b_first
    assert owner(seen[-1], frames[-1][0]) == a_first  # A is still A after the crossing
    assert owner(seen[-1], frames[-1][1]) == b_first
    assert tracker.tracks_started == 2
    assert {e.track_id for e in emissions} == {a_first, b_first}


def test_short_occlusion_keeps_the_track() -> None:
    frames = [[box_at(200 + 3 * i, 240)] for i in range(40)]
    for i in range(15, 18):  # hidden behind a shelf for three detection rounds
        frames[i] = []
    tracker = Tracker(TrackerConfig(max_missed_seconds=1.0))
    _, emissions = run(tracker, frames)
    assert tracker.tracks_started == 1
    assert {e.track_id for e in emissions} == set(tracker_ids(emissions)[:1])
    assert emissions[0].reason == "first"


def test_leaving_and_coming_back_is_a_new_track() -> None:
    frames = (
        [[box_at(300, 240)] for _ in range(20)]
        + [[] for _ in range(30)]
        + [[box_at(310, 240)] for _ in range(20)]
    )
    tracker = Tracker(TrackerConfig(max_missed_seconds=1.0))  # gone for 2 s
    _, emissions = run(tracker, frames)
    assert tracker.tracks_started == 2
    assert len({e.track_id for e in emissions}) == 2
    first, second = sorted(emissions, key=lambda e: e.candidate.captured_at)[:: len(emissions) - 1]
    assert first.candidate.captured_at < T0 + timedelta(seconds=20 / FPS)
    assert second.candidate.captured_at >= T0 + timedelta(seconds=50 / FPS)


def tracker_ids(emissions: list[Emission]) -> list[str]:
    return [e.track_id for e in emissions]


def test_a_minute_in_view_yields_a_handful_of_events() -> None:
    n = int(60 * FPS)
    boxes = [[box_at(320 + 10 * np.sin(i / 10), 240)] for i in range(n)]
    looks = [textured(i // 8) for i in range(n)]  # the person's look changes every half second
    tracker = Tracker(TrackerConfig(max_events=4, reemit_seconds=20, first_emit_seconds=1.0))
    _, emissions = run(tracker, boxes, looks)
    assert tracker.tracks_started == 1
    assert [e.reason for e in emissions] == ["first", "reemit", "reemit", "final"]
    times = [e.candidate.captured_at for e in emissions]
    assert times[0] <= T0 + timedelta(seconds=1.1)
    assert all(len(e.candidates) == 5 for e in emissions[:3])
    sent = [c.captured_at for e in emissions for c in e.candidates]
    assert len(sent) == len(set(sent))  # no crop is sent twice
    capped = Tracker(TrackerConfig(max_events=3, reemit_seconds=20))
    _, emissions = run(capped, boxes, looks)
    assert [e.reason for e in emissions] == ["first", "reemit", "reemit"]


def test_identical_views_are_not_sent_again() -> None:
    """A person standing still in front of an unchanging scene: the first event says it all."""
    frames = [[box_at(320, 240)] for _ in range(int(45 * FPS))]
    _, emissions = run(Tracker(TrackerConfig(reemit_seconds=20)), frames)
    assert [e.reason for e in emissions] == ["first"]
    assert len(emissions[0].candidates) == 1  # K copies of one view would add nothing


def test_flicker_and_tiny_faces_emit_nothing() -> None:
    frames = [[box_at(300, 240)]] + [[] for _ in range(10)] + [[box_at(100, 100, size=20)] for _ in range(10)]
    _, emissions = run(Tracker(TrackerConfig(min_face_px=40)), frames)
    assert emissions == []


def test_best_crop_prefers_the_larger_sharper_face() -> None:
    blurry = np.full((480, 640, 3), 128, np.uint8)
    tracker = Tracker(TrackerConfig(first_emit_seconds=10))
    for i, (frame, size) in enumerate([(blurry, 110), (FRAME, 140), (blurry, 120)]):
        index = tracker.step()
        tracker.update(
            [DetectedFace(box_at(300, 240, size), 0.9)], frame, T0 + timedelta(seconds=i), frame_index=index
        )
    (emission,) = tracker.flush()
    assert emission.candidate.bbox.width == 140
    assert emission.reason == "final"
    # the crop carries the margin around the face
    assert emission.candidate.crop.shape[0] > 140


def test_k_best_crops_are_spread_in_time_and_best_first() -> None:
    n = 45  # 3 s, detected every frame; the face grows (walks towards the camera)
    boxes = [[box_at(320, 240, 60 + i)] for i in range(n)]
    looks = [textured(100 + i) for i in range(n)]
    cfg = TrackerConfig(crops_per_track=4, first_emit_seconds=10, min_crop_gap_seconds=0.3)
    _, emissions = run(Tracker(cfg), boxes, looks)
    (final,) = emissions
    crops = final.candidates
    assert len(crops) == 4
    qualities = [c.quality.total for c in crops]
    assert qualities == sorted(qualities, reverse=True)
    times = sorted(c.captured_at for c in crops)
    assert all(b - a >= timedelta(seconds=0.3) for a, b in itertools.pairwise(times))
    for c in crops:  # the face and the crop agree: face box inside the crop, margin around it
        assert c.face is not None
        assert c.face.left > 0 and c.face.right < c.crop.shape[1]
        assert c.face.top > 0 and c.face.bottom < c.crop.shape[0]
        assert max(c.face.width, c.face.height) <= cfg.max_face_side_px


def test_select_diverse_skips_near_copies() -> None:
    tracker = Tracker(TrackerConfig(first_emit_seconds=10))
    for i in range(6):  # one look, six frames 0.5 s apart: the same picture six times
        index = tracker.step()
        tracker.update([DetectedFace(box_at(320, 240), 0.9)], FRAME, T0 + timedelta(seconds=i / 2), index)
    (track,) = tracker.tracks.values()
    assert len(track.pool) == 6
    assert len(select_diverse(track.pool, 5, [], tracker.config)) == 1


def test_a_fast_walker_seen_once_is_still_followed() -> None:
    """Someone crossing the view fast: a face width per detection round, no overlap between rounds."""
    tracker = Tracker(TrackerConfig(max_missed_seconds=0.5))
    for i in range(6):  # the detector runs on every 3rd frame, as in the pipeline
        index = 3 * i
        tracker.frame_index = index + 1
        box = box_at(60 + 100 * i, 240, 90)
        when = T0 + timedelta(seconds=index / FPS)
        tracker.update([DetectedFace(box, 0.9)], FRAME, when, frame_index=index)
    assert tracker.tracks_started == 1


def test_a_face_between_two_hidden_people_starts_a_new_track() -> None:
    """After an occlusion, a face that could be either of two hidden people is neither."""
    frames = [[box_at(200, 240, 60), box_at(290, 240, 60)] for _ in range(9)]
    frames += [[] for _ in range(6)]  # both hidden
    frames += [[box_at(245, 240, 60)] for _ in range(9)]  # one face, right between them
    tracker = Tracker(TrackerConfig(max_missed_seconds=1.0))
    run(tracker, frames)
    assert tracker.tracks_started == 3
    # with only one of them hidden nearby, the face is that person
    frames = (
        [[box_at(200, 240, 60)] for _ in range(9)] + [[] for _ in range(6)] + [[box_at(250, 240, 60)]] * 9
    )
    tracker = Tracker(TrackerConfig(max_missed_seconds=1.0))
    run(tracker, frames)
    assert tracker.tracks_started == 1


def test_a_much_larger_face_is_someone_else() -> None:
    """Size gating: a face twice the size in the same place is a nearer person, not the same one."""
    frames = [[box_at(300, 240, 60)] for _ in range(6)] + [[box_at(300, 240, 130)] for _ in range(6)]
    tracker = Tracker()
    run(tracker, frames)
    assert tracker.tracks_started == 2


def test_a_track_past_max_missed_seconds_cannot_claim_the_next_face() -> None:
    """With no detection round while the track was hidden (regions skip it), it still ends on time."""
    tracker = Tracker(TrackerConfig(max_missed_seconds=1.0))
    for i in range(15):  # one second in view, walking right
        index = tracker.step()
        tracker.update(
            [DetectedFace(box_at(200 + 4 * i, 240), 0.9)], FRAME, T0 + timedelta(seconds=i / FPS), index
        )
    for _ in range(20):
        tracker.step()
    # 1.4 s after it was last seen, someone appears where it would be: a newcomer, not the track.
    when = T0 + timedelta(seconds=14 / FPS + 1.4)
    tracker.update([DetectedFace(box_at(200 + 4 * 34, 240), 0.9)], FRAME, when, tracker.frame_index - 1)
    assert tracker.tracks_started == 2 and len(tracker.tracks) == 1
