"""Tracking faces across frames and choosing the K best, diverse crops of each track.

The tracker sees detections only every Nth frame (see
:mod:`deeplens_lambda.pipeline`); in between it moves each track by its
estimated motion: centre *and size* velocity, because people walking towards a
camera grow quickly. Association is greedy on IoU against the predicted box,
with a centre-distance fallback for fast movers whose boxes no longer overlap;
both are gated by size (a detection much larger or smaller than the predicted
box is another person, typically one nearer or further away). A track that goes
unmatched for ``max_missed_seconds`` ends (an occlusion shorter than that keeps
the same track whatever the detection cadence; someone who leaves and comes
back later gets a new track, and the backend joins them by face).

Every detection of a face at least ``min_face_px`` wide is a crop *candidate*,
scored by :func:`deeplens_lambda.quality.crop_quality`. An emission carries the
best ``crops_per_track`` candidates that are diverse: no two closer in time than
``min_crop_gap_seconds`` or nearly identical in appearance, so K crops are K
views of the person and not K copies of one frame.

Emission policy, so the backend decides early and a long stay yields a handful
of events:

* a track must be seen on ``min_hits`` detection rounds (drops flickers); a
  track missed before that is dropped at once, so a stray box cannot claim a
  face later;
* ``first``: once its first candidate is ``first_emit_seconds`` old (~1 s of
  views), the K best diverse crops so far;
* ``reemit``: every ``reemit_seconds`` while the person stays, the best crops
  not sent yet;
* ``final``: when the track ends, the best crops not sent yet, only if they add
  evidence (better than the worst crop already sent and diverse from the sent
  ones); a track that ended before its first emission sends its K best;
* never more than ``max_events`` emissions per track.

The backend joins every event of a ``track_id`` into one decision.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cv2
import numpy as np

from core.models import CROP_MARGIN, BoundingBox, DetectedFace
from deeplens_lambda.detectors import SearchRegion
from deeplens_lambda.quality import Quality, crop_quality, face_patch

#: Crops are scaled down so the face is at most this many pixels: the embedder
#: aligns faces into a 150 px chip, so more pixels only cost bytes.
MAX_FACE_SIDE_PX = 160
#: Default number of crops per track (``STORELENS_CROPS_PER_TRACK``).
DEFAULT_CROPS_PER_TRACK = 5
_SIGNATURE_SIDE = 16


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tuning of association, crop choice and emission (defaults suit 640x360 to 1080p at 10-30 fps)."""

    iou_threshold: float = 0.2
    #: centre fallback: match if the centres are within this many box sizes
    max_center_distance: float = 0.75
    #: a face seen only once has no velocity yet; it may have moved this many
    #: face widths per second (someone walking across the view at ~1.3 m/s with
    #: a ~16 cm face) on top of ``max_center_distance``
    max_face_speed: float = 8.0
    #: a track hidden for ``t`` seconds (occluded by a passer-by) is picked up
    #: again within ``max_center_distance + max_hidden_speed * t`` box sizes, if
    #: no other hidden track could claim the same face
    max_hidden_speed: float = 2.0
    #: a detection whose side differs from the predicted side by more than this
    #: factor is not the same face (the size changes ~10 % per detection round
    #: for someone walking towards the camera)
    max_size_ratio: float = 1.6
    #: a person hidden (or not detected) for longer than this ends their track
    max_missed_seconds: float = 1.5
    #: between full-frame passes, a track missed on more detection rounds than this
    #: is not searched around (it is hidden; the next full pass finds it if it is back)
    max_missed_search: int = 2
    min_hits: int = 2
    crops_per_track: int = DEFAULT_CROPS_PER_TRACK
    min_crop_gap_seconds: float = 0.2
    #: crops whose 16x16 grey signatures correlate above this are duplicates
    max_crop_similarity: float = 0.95
    first_emit_seconds: float = 1.0
    reemit_seconds: float = 20.0
    max_events: int = 4
    crop_margin: float = CROP_MARGIN
    max_face_side_px: int = MAX_FACE_SIDE_PX
    min_face_px: int = 40

    def __post_init__(self) -> None:
        if not 1 <= self.crops_per_track <= 10:
            raise ValueError("crops_per_track must be 1..10 (the schema's limit per event)")
        if self.min_face_px < 1:
            raise ValueError("min_face_px must be positive")


@dataclass(slots=True)
class Candidate:
    """One crop of a track: the face in the frame, the scaled crop around it and its score."""

    quality: Quality
    bbox: BoundingBox  # the face in frame pixels
    confidence: float
    captured_at: datetime
    crop: np.ndarray  # BGR pixels of bbox grown by the margin, clipped, scaled by ``scale``
    crop_box: BoundingBox  # where the crop sits in the frame (before scaling)
    frame_width: int
    frame_height: int
    scale: float = 1.0  # crop pixels per frame pixel
    face: BoundingBox | None = None  # the face in crop pixels
    landmarks: tuple[tuple[float, float], ...] | None = None  # in crop pixels
    signature: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))


@dataclass(frozen=True, slots=True)
class Emission:
    """Crops the tracker decided to publish, best first (the pipeline turns them into FaceEvents)."""

    track_id: str
    candidates: tuple[Candidate, ...]
    reason: str  # "first", "reemit" or "final"

    @property
    def candidate(self) -> Candidate:
        """The best crop."""
        return self.candidates[0]


@dataclass(slots=True)
class Track:
    """One person followed across frames."""

    track_id: str
    bbox: BoundingBox
    started_at: datetime
    last_seen_at: datetime
    #: centre x, centre y, width, height change per frame
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    last_frame: int = 0
    hits: int = 1
    missed: int = 0
    emitted: int = 0
    last_emit_at: datetime | None = None
    first_candidate_at: datetime | None = None
    pool: list[Candidate] = field(default_factory=list)
    sent: list[Candidate] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return self.hits > 1

    def predicted(self, frame_index: int) -> BoundingBox:
        """Where the box should be at ``frame_index`` at the current velocity (centre and size)."""
        steps = frame_index - self.last_frame
        vx, vy, vw, vh = self.velocity
        cx, cy = self.bbox.center
        w = max(self.bbox.width * 0.5, self.bbox.width + vw * steps)
        h = max(self.bbox.height * 0.5, self.bbox.height + vh * steps)
        cx, cy = cx + vx * steps, cy + vy * steps
        return BoundingBox(round(cx - w / 2), round(cy - h / 2), round(w), round(h))


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
        #: when the detector last scanned a whole frame (see deeplens_lambda.pipeline.detect_faces)
        self.last_full_scan: datetime | None = None

    # ----------------------------------------------------------------- stepping
    def step(self) -> int:
        """Advance the frame counter; returns the index of the frame being processed."""
        index = self.frame_index
        self.frame_index += 1
        return index

    def current_boxes(self) -> dict[str, BoundingBox]:
        """Predicted boxes of live tracks at the current frame (for drawing)."""
        return {tid: t.predicted(self.frame_index - 1) for tid, t in self.tracks.items()}

    def search_regions(self, frame_index: int, width: int, height: int, now: datetime) -> list[SearchRegion]:
        """Where each live track's face can be at ``frame_index``, for a detector that scans regions.

        A region holds every face :func:`_associate` could match to the track:
        a centre within the track's reach (:meth:`_reach`) of its predicted or
        last box, at up to ``max_size_ratio`` times its size. ``face_px`` is the
        predicted face side. Tracks predicted out of the frame, or missed on more
        than ``max_missed_search`` rounds (hidden), get none.
        """
        cfg = self.config
        regions: list[SearchRegion] = []
        for track in self.tracks.values():
            if track.missed > cfg.max_missed_search:
                continue
            pred = track.predicted(frame_index)
            cx, cy = pred.center
            if not (0 <= cx < width and 0 <= cy < height):
                continue
            last = track.bbox
            side = max(1.0, (pred.width + pred.height + last.width + last.height) / 4.0)
            left, top = min(pred.left, last.left), min(pred.top, last.top)
            right, bottom = max(pred.right, last.right), max(pred.bottom, last.bottom)
            # centre reach plus half the largest face the size gate lets through, beyond the boxes' own half
            margin = round((self._reach(track, now) + 0.5 * cfg.max_size_ratio - 0.5) * side)
            w, h = right - left + 2 * margin, bottom - top + 2 * margin
            box = BoundingBox(left - margin, top - margin, w, h)
            regions.append(SearchRegion(box.clip(width, height), (pred.width + pred.height) / 2.0))
        return regions

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
        emissions: list[Emission] = []
        for track in list(self.tracks.values()):
            # Hidden for longer than max_missed_seconds: gone, before it can claim a newcomer's
            # face (with few detection rounds in between, its reach has grown wide by now).
            if captured_at - track.last_seen_at > timedelta(seconds=cfg.max_missed_seconds):
                emissions.extend(self._finish(track))
        tracks = list(self.tracks.values())
        predicted = [t.predicted(index) for t in tracks]
        reach = [self._reach(t, captured_at) for t in tracks]
        hidden = [t.missed > 0 for t in tracks]
        pairs = _associate(
            predicted, [t.bbox for t in tracks], reach, hidden, [d.bbox for d in detections], cfg
        )
        matched_tracks = set()
        matched_dets = set()
        for ti, di in pairs:
            track = tracks[ti]
            det = detections[di]
            steps = max(1, index - track.last_frame)
            (cx0, cy0), (cx1, cy1) = track.bbox.center, det.bbox.center
            raw = (
                (cx1 - cx0) / steps,
                (cy1 - cy0) / steps,
                (det.bbox.width - track.bbox.width) / steps,
                (det.bbox.height - track.bbox.height) / steps,
            )
            if track.hits == 1:  # the first measured motion: nothing to smooth with yet
                track.velocity = raw
            else:  # smooth so one jittery detection does not fling the box
                track.velocity = tuple(0.5 * a + 0.5 * b for a, b in zip(track.velocity, raw, strict=True))  # type: ignore[assignment]
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
            lost = captured_at - track.last_seen_at > timedelta(seconds=cfg.max_missed_seconds)
            tentative = track.hits < cfg.min_hits  # a one-off box that was not seen again: noise
            if lost or gone or tentative:
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
    def _reach(self, track: Track, now: datetime) -> float:
        """How far (in box sizes) a detection may be from the track for the centre fallback; 0 = none.

        A track seen once, whose motion is unknown, may have moved at walking
        speed; a hidden track (missed rounds) a little further for each second
        it was hidden (and :func:`_associate` takes it only if unambiguous).
        """
        cfg = self.config
        if track.missed:
            hidden = (now - track.last_seen_at).total_seconds()
            return cfg.max_center_distance + cfg.max_hidden_speed * hidden
        if track.hits == 1:
            return cfg.max_center_distance + cfg.max_face_speed * (now - track.last_seen_at).total_seconds()
        return cfg.max_center_distance

    def _consider(self, track: Track, det: DetectedFace, frame: np.ndarray, captured_at: datetime) -> None:
        """Score the detection as a crop candidate and add it to the pool (thinned in time when full)."""
        cfg = self.config
        box = det.bbox
        if min(box.width, box.height) < cfg.min_face_px:
            return
        h, w = frame.shape[:2]
        if box.left <= 0 or box.top <= 0 or box.right >= w or box.bottom >= h:
            return  # cut by the frame edge: part of the face is out of view
        patch = face_patch(frame, box)
        quality = crop_quality(frame, box, det.confidence, det.landmarks, patch=patch)
        if track.first_candidate_at is None:
            track.first_candidate_at = captured_at
        track.pool.append(self._candidate(det, frame, captured_at, quality, patch))
        if len(track.pool) > 4 * cfg.crops_per_track:
            # Full: of the two candidates closest in time, drop the worse one, so the
            # pool stays spread over the whole stay instead of its best second.
            track.pool.sort(key=lambda c: c.captured_at)
            gaps = [b.captured_at - a.captured_at for a, b in zip(track.pool, track.pool[1:], strict=False)]
            i = min(range(len(gaps)), key=gaps.__getitem__)
            a, b = track.pool[i], track.pool[i + 1]
            track.pool.remove(a if a.quality.total < b.quality.total else b)

    def _candidate(
        self, det: DetectedFace, frame: np.ndarray, captured_at: datetime, quality: Quality, patch: np.ndarray
    ) -> Candidate:
        cfg = self.config
        h, w = frame.shape[:2]
        box = det.bbox
        crop_box = box.expand(cfg.crop_margin).clip(w, h)
        crop = frame[crop_box.top : crop_box.bottom, crop_box.left : crop_box.right]
        scale = min(1.0, cfg.max_face_side_px / max(box.width, box.height))
        if scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        else:
            crop = crop.copy()  # do not keep the whole frame alive through a view
        ch, cw = crop.shape[:2]
        face = BoundingBox(
            round((box.left - crop_box.left) * scale),
            round((box.top - crop_box.top) * scale),
            round(box.width * scale),
            round(box.height * scale),
        ).clip(cw, ch)
        marks = None
        if det.landmarks:
            marks = tuple(((x - crop_box.left) * scale, (y - crop_box.top) * scale) for x, y in det.landmarks)
        small = cv2.resize(patch, (_SIGNATURE_SIDE, _SIGNATURE_SIDE), interpolation=cv2.INTER_AREA)
        sig = small.astype(np.float32).ravel()
        sig -= sig.mean()
        sig /= float(np.linalg.norm(sig)) or 1.0
        return Candidate(
            quality, box, det.confidence, captured_at, crop, crop_box, w, h, scale, face, marks, sig
        )

    def _maybe_emit(self, track: Track, now: datetime) -> Emission | None:
        cfg = self.config
        if not track.pool or track.emitted >= cfg.max_events or track.hits < cfg.min_hits:
            return None
        if track.emitted == 0:
            assert track.first_candidate_at is not None
            if now - track.first_candidate_at < timedelta(seconds=cfg.first_emit_seconds):
                return None
            return self._emit(track, select_diverse(track.pool, cfg.crops_per_track, [], cfg), "first", now)
        assert track.last_emit_at is not None
        if now - track.last_emit_at < timedelta(seconds=cfg.reemit_seconds):
            return None
        chosen = select_diverse(track.pool, cfg.crops_per_track, track.sent, cfg)
        return self._emit(track, chosen, "reemit", now) if chosen else None

    def _emit(self, track: Track, chosen: list[Candidate], reason: str, now: datetime) -> Emission:
        emission = Emission(track.track_id, tuple(chosen), reason)
        track.emitted += 1
        track.last_emit_at = now
        ids = {id(c) for c in chosen}
        track.pool = [c for c in track.pool if id(c) not in ids]
        for c in chosen:  # remember what was sent (for diversity), without the pixels
            track.sent.append(
                Candidate(
                    c.quality, c.bbox, c.confidence, c.captured_at, np.zeros((0, 0, 3), np.uint8),
                    c.crop_box, c.frame_width, c.frame_height, c.scale, c.face, c.landmarks, c.signature,
                )
            )  # fmt: skip
        return emission

    def _finish(self, track: Track) -> list[Emission]:
        self.tracks.pop(track.track_id, None)
        cfg = self.config
        if track.hits < cfg.min_hits or track.emitted >= cfg.max_events or not track.pool:
            return []
        if track.emitted == 0:
            chosen = select_diverse(track.pool, cfg.crops_per_track, [], cfg)
        else:  # only crops that could improve the track's evidence
            floor = min(c.quality.total for c in track.sent)
            better = [c for c in track.pool if c.quality.total > floor]
            chosen = select_diverse(better, cfg.crops_per_track, track.sent, cfg)
        return [self._emit(track, chosen, "final", track.last_seen_at)] if chosen else []


def select_diverse(
    pool: list[Candidate], k: int, sent: list[Candidate], cfg: TrackerConfig
) -> list[Candidate]:
    """Up to ``k`` candidates, best quality first, none too close to another chosen or sent one.

    Two crops are too close when they were taken less than
    ``cfg.min_crop_gap_seconds`` apart (consecutive detections of a person
    are near copies) or their grey signatures correlate above
    ``cfg.max_crop_similarity``.
    """
    gap = timedelta(seconds=cfg.min_crop_gap_seconds)
    chosen: list[Candidate] = []
    for cand in sorted(pool, key=lambda c: c.quality.total, reverse=True):
        if len(chosen) >= k:
            break
        if any(
            abs(cand.captured_at - other.captured_at) < gap
            or float(np.dot(cand.signature, other.signature)) > cfg.max_crop_similarity
            for other in itertools.chain(chosen, sent)
        ):
            continue
        chosen.append(cand)
    return chosen


def _side_ratio(a: BoundingBox, b: BoundingBox) -> float:
    sa = max(1.0, (a.width + a.height) / 2.0)
    sb = max(1.0, (b.width + b.height) / 2.0)
    return max(sa, sb) / min(sa, sb)


def _associate(
    predicted: list[BoundingBox],
    last: list[BoundingBox],
    reach: list[float],
    hidden: list[bool],
    dets: list[BoundingBox],
    cfg: TrackerConfig,
) -> list[tuple[int, int]]:
    """Greedy matching: highest IoU pairs first, then nearest centres; both gated by size.

    Each track is compared at its predicted box and at its last detected box and
    the better of the two counts: after a few missed rounds a noisy velocity
    can overshoot, and the truth usually lies between the two. The centre
    fallback (for fast movers whose boxes stop overlapping between two
    detection rounds) matches within ``reach[track]`` box sizes (see
    :meth:`Tracker._reach`). A ``hidden`` track (not seen last round) takes a
    face by distance only if no other hidden track is within reach of it and
    no other face is within reach of the track: after an occlusion, a guess
    between two people is worse than a new track.
    """
    if not predicted or not dets:
        return []
    candidates: list[tuple[float, int, int]] = []
    far: list[tuple[float, int, int]] = []
    for ti, boxes in enumerate(zip(predicted, last, strict=True)):
        for di, db in enumerate(dets):
            best_iou, best_dist = 0.0, float("inf")
            for tb in boxes:
                if _side_ratio(tb, db) > cfg.max_size_ratio:
                    continue
                best_iou = max(best_iou, tb.iou(db))
                size = max(1.0, (tb.width + tb.height + db.width + db.height) / 4.0)
                (ax, ay), (bx, by) = tb.center, db.center
                best_dist = min(best_dist, ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / size)
            if best_iou >= cfg.iou_threshold:
                candidates.append((best_iou, ti, di))
            if best_dist <= reach[ti]:
                far.append((best_dist, ti, di))
    candidates.sort(key=lambda c: c[0], reverse=True)
    far.sort(key=lambda c: c[0])
    used_t: set[int] = set()
    used_d: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for stage in (candidates, far):
        for _, ti, di in stage:
            if ti in used_t or di in used_d:
                continue
            if stage is far and hidden[ti]:
                rivals = [
                    (t, d)
                    for _, t, d in far
                    if t not in used_t and d not in used_d and (t == ti) != (d == di)
                ]
                if any(t == ti or hidden[t] for t, _ in rivals):
                    continue  # ambiguous after an occlusion: leave it to a new track
            pairs.append((ti, di))
            used_t.add(ti)
            used_d.add(di)
    return pairs
