"""IoU/centroid tracking across frames and best-crop selection per track.

The tracker sees detections only every Nth frame (see
:mod:`deeplens_lambda.pipeline`); in between it moves each track by its
estimated velocity. Association is greedy on IoU against the predicted box,
with a centroid-distance fallback for fast movers whose boxes no longer
overlap. A track that goes unmatched for ``max_missed`` detection rounds ends
(an occlusion shorter than that keeps the same track; someone who leaves and
comes back later gets a new track, and the backend's clustering joins them).

Emission policy, so a person in view for a minute yields a handful of events:

* a track must be seen on ``min_hits`` detection rounds (drops flickers);
* its best crop (by :func:`deeplens_lambda.quality.crop_quality`) over the
  first ``first_emit_seconds`` is emitted, then the best of each following
  ``reemit_seconds`` window while the person stays;
* never more than ``max_events`` per track;
* a track that ends before its first emission emits its best crop then.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from core.models import CROP_MARGIN, BoundingBox, DetectedFace
from deeplens_lambda.quality import Quality, crop_quality


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tuning of association and emission (defaults suit 640x480 at 15-30 fps)."""

    iou_threshold: float = 0.2
    #: centroid fallback: match if the centres are within this many box sizes
    max_center_distance: float = 0.75
    max_missed: int = 4
    min_hits: int = 2
    first_emit_seconds: float = 1.0
    reemit_seconds: float = 20.0
    max_events: int = 3
    crop_margin: float = CROP_MARGIN
    min_face_px: int = 40


@dataclass(slots=True)
class Candidate:
    """The best crop a track has seen in its current window."""

    quality: Quality
    bbox: BoundingBox
    confidence: float
    captured_at: datetime
    crop: np.ndarray  # BGR pixels of bbox expanded by the margin, clipped to the frame
    crop_box: BoundingBox  # where ``crop`` sits in the frame
    frame_width: int
    frame_height: int


@dataclass(frozen=True, slots=True)
class Emission:
    """A crop the tracker decided to publish (the pipeline turns it into a FaceEvent)."""

    track_id: str
    candidate: Candidate
    reason: str  # "first", "reemit" or "final"


@dataclass(slots=True)
class Track:
    """One person followed across frames."""

    track_id: str
    bbox: BoundingBox
    started_at: datetime
    last_seen_at: datetime
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per frame
    last_frame: int = 0
    hits: int = 1
    missed: int = 0
    emitted: int = 0
    window_start: datetime | None = None
    best: Candidate | None = None

    @property
    def confirmed(self) -> bool:
        return self.hits > 1

    def predicted(self, frame_index: int) -> BoundingBox:
        """Where the box should be at ``frame_index`` at the current velocity."""
        steps = frame_index - self.last_frame
        dx, dy = self.velocity
        return BoundingBox(
            round(self.bbox.left + dx * steps),
            round(self.bbox.top + dy * steps),
            self.bbox.width,
            self.bbox.height,
        )


class Tracker:
    """Follows faces across frames and decides which crops to publish.

    >>> tracker = Tracker(camera_id="cam-1")
    >>> emissions = tracker.update(detections, frame, captured_at)   # doctest: +SKIP
    """

    def __init__(self, config: TrackerConfig | None = None, *, camera_id: str = "cam") -> None:
        self.config = config or TrackerConfig()
        self.camera_id = camera_id
        self.tracks: dict[str, Track] = {}
        self.frame_index = 0
        self.tracks_started = 0
        self.detections_seen = 0
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:6]

    # ----------------------------------------------------------------- stepping
    def step(self) -> int:
        """Advance the frame counter; returns the index of the frame being processed."""
        index = self.frame_index
        self.frame_index += 1
        return index

    def current_boxes(self) -> dict[str, BoundingBox]:
        """Predicted boxes of live tracks at the current frame (for drawing)."""
        return {tid: t.predicted(self.frame_index - 1) for tid, t in self.tracks.items()}

    def update(
        self,
        detections: list[DetectedFace],
        frame: np.ndarray,
        captured_at: datetime,
        frame_index: int | None = None,
    ) -> list[Emission]:
        """Associate ``detections`` of ``frame`` with tracks; return crops to publish."""
        cfg = self.config
        index = self.frame_index - 1 if frame_index is None else frame_index
        self.detections_seen += len(detections)
        tracks = list(self.tracks.values())
        predicted = [t.predicted(index) for t in tracks]
        pairs = _associate(predicted, [d.bbox for d in detections], cfg)
        matched_tracks = set()
        matched_dets = set()
        emissions: list[Emission] = []
        for ti, di in pairs:
            track = tracks[ti]
            det = detections[di]
            steps = max(1, index - track.last_frame)
            (cx0, cy0), (cx1, cy1) = track.bbox.center, det.bbox.center
            vx, vy = (cx1 - cx0) / steps, (cy1 - cy0) / steps
            # Smooth the velocity so one jittery detection does not fling the box.
            track.velocity = (0.5 * track.velocity[0] + 0.5 * vx, 0.5 * track.velocity[1] + 0.5 * vy)
            track.bbox = det.bbox
            track.last_frame = index
            track.last_seen_at = captured_at
            track.hits += 1
            track.missed = 0
            matched_tracks.add(ti)
            matched_dets.add(di)
            self._consider(track, det, frame, captured_at)
        for di, det in enumerate(detections):
            if di in matched_dets:
                continue
            track = Track(
                track_id=f"{self.camera_id[:96]}-{self._run}-{next(self._ids)}",  # schema: <= 128 chars
                bbox=det.bbox,
                started_at=captured_at,
                last_seen_at=captured_at,
                last_frame=index,
            )
            self.tracks[track.track_id] = track
            self.tracks_started += 1
            self._consider(track, det, frame, captured_at)
        height, width = frame.shape[:2]
        for ti, track in enumerate(tracks):
            if ti in matched_tracks:
                continue
            track.missed += 1
            cx, cy = predicted[ti].center
            gone = not (0 <= cx < width and 0 <= cy < height)  # walked out of the frame
            if track.missed > cfg.max_missed or gone:
                emissions.extend(self._finish(track))
        for track in list(self.tracks.values()):
            emission = self._maybe_emit(track, captured_at)
            if emission is not None:
                emissions.append(emission)
        return emissions

    def flush(self) -> list[Emission]:
        """End every live track (end of stream), emitting crops still owed."""
        emissions: list[Emission] = []
        for track in list(self.tracks.values()):
            emissions.extend(self._finish(track))
        return emissions

    # ---------------------------------------------------------------- internals
    def _consider(self, track: Track, det: DetectedFace, frame: np.ndarray, captured_at: datetime) -> None:
        cfg = self.config
        if min(det.bbox.width, det.bbox.height) < cfg.min_face_px:
            return
        quality = crop_quality(frame, det.bbox, det.confidence)
        if track.window_start is None:
            track.window_start = captured_at
        if track.best is not None and track.best.quality.total >= quality.total:
            return
        h, w = frame.shape[:2]
        crop_box = det.bbox.expand(cfg.crop_margin).clip(w, h)
        crop = frame[crop_box.top : crop_box.bottom, crop_box.left : crop_box.right].copy()
        track.best = Candidate(quality, det.bbox, det.confidence, captured_at, crop, crop_box, w, h)

    def _maybe_emit(self, track: Track, now: datetime) -> Emission | None:
        cfg = self.config
        if track.best is None or track.window_start is None or track.emitted >= cfg.max_events:
            return None
        if track.hits < cfg.min_hits:
            return None
        wait = cfg.first_emit_seconds if track.emitted == 0 else cfg.reemit_seconds
        if now - track.window_start < timedelta(seconds=wait):
            return None
        return self._emit(track, "first" if track.emitted == 0 else "reemit", now)

    def _emit(self, track: Track, reason: str, now: datetime) -> Emission:
        assert track.best is not None
        emission = Emission(track.track_id, track.best, reason)
        track.emitted += 1
        track.best = None
        track.window_start = now
        return emission

    def _finish(self, track: Track) -> list[Emission]:
        self.tracks.pop(track.track_id, None)
        cfg = self.config
        if track.emitted == 0 and track.best is not None and track.hits >= cfg.min_hits:
            return [self._emit(track, "final", track.last_seen_at)]
        return []


def _associate(
    tracks: list[BoundingBox], dets: list[BoundingBox], cfg: TrackerConfig
) -> list[tuple[int, int]]:
    """Greedy matching: highest IoU pairs first, then nearest centres for the rest."""
    if not tracks or not dets:
        return []
    candidates: list[tuple[float, int, int]] = []
    for ti, tb in enumerate(tracks):
        for di, db in enumerate(dets):
            iou = tb.iou(db)
            if iou >= cfg.iou_threshold:
                candidates.append((iou, ti, di))
    candidates.sort(reverse=True)
    used_t: set[int] = set()
    used_d: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, ti, di in candidates:
        if ti in used_t or di in used_d:
            continue
        pairs.append((ti, di))
        used_t.add(ti)
        used_d.add(di)
    far: list[tuple[float, int, int]] = []
    for ti, tb in enumerate(tracks):
        if ti in used_t:
            continue
        for di, db in enumerate(dets):
            if di in used_d:
                continue
            size = max(1.0, (tb.width + tb.height + db.width + db.height) / 4.0)
            (ax, ay), (bx, by) = tb.center, db.center
            dist = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / size
            ratio = max(tb.area, db.area) / max(1, min(tb.area, db.area))
            if dist <= cfg.max_center_distance and ratio < 2.5:
                far.append((dist, ti, di))
    far.sort()
    for _, ti, di in far:
        if ti in used_t or di in used_d:
            continue
        pairs.append((ti, di))
        used_t.add(ti)
        used_d.add(di)
    return pairs
