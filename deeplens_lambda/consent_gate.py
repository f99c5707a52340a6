"""``unmatched = "anonymous"``: the edge sends crops only of people it can match to a consented customer.

For each tracker emission the gate embeds the crops on the device (the same
dlib/ONNX templates the backend uses, through an injected
:class:`~core.ports.FaceEmbedder`) and compares them with the consented
customers' templates (:class:`~core.ports.ConsentGallery`, re-read every
``refresh_seconds``):

* a match (similarity >= ``threshold`` for any crop against any template) marks
  the track as a customer's; this emission and all later ones of the track are
  sent as usual, crops included;
* otherwise nothing leaves the device while the track lasts; when it ends, one
  anonymous sighting event is published (store, camera, zone, track id, first and
  last time seen; no crop, no template, no box). If a later emission of the track
  matches (larger faces as the person comes closer), its crops are sent instead
  and no sighting is.

The templates and crops of unmatched people exist only in memory, for the
comparison. The threshold is the backend's match threshold: in consent-first
mode the backend discards anything below it anyway, so sending near misses
would only expose strangers' faces (on the walkway clip, a crop pair of two
different people reaches 0.42 in 5.6 % of pairs but 0.55 in 0.5 %;
``bench/accuracy.py``). A customer whose crops all stay below it is counted as
an anonymous visitor.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from core.errors import StoreLensError
from core.models import FaceCrop, FaceEvent
from core.ports import ConsentedTemplates, ConsentGallery, FaceEmbedder

if TYPE_CHECKING:
    from core.settings import Settings
    from deeplens_lambda.tracker import Emission

log = logging.getLogger(__name__)

#: ``send``: every track's crops go to the backend (the default, as before);
#: ``anonymous``: only tracks matched to a consented customer send crops.
UNMATCHED_MODES = ("send", "anonymous")
#: The backend's default match threshold (``STORELENS_MATCH_THRESHOLD``).
DEFAULT_THRESHOLD = 0.55


@dataclass
class _Held:
    """An unmatched track: only where and when, until it ends."""

    first: datetime
    last: datetime
    frame_width: int
    frame_height: int


@dataclass(slots=True)
class GateStats:
    matched_tracks: int = 0
    anonymous_tracks: int = 0
    crops_embedded: int = 0


class UnmatchedGate:
    """Decides per track whether its crops leave the device (see the module docstring)."""

    def __init__(
        self,
        embedder: FaceEmbedder,
        gallery: ConsentGallery,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = threshold
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._templates: ConsentedTemplates | None = None
        self._loaded_at = 0.0
        self._matched: set[str] = set()
        self._held: dict[str, _Held] = {}
        # First and last time each live track was seen, as of the previous round: a
        # track's last emission comes after the tracker has already dropped it.
        self._spans: dict[str, tuple[datetime, datetime]] = {}
        self.stats = GateStats()

    # ------------------------------------------------------------------ gallery
    def templates(self) -> ConsentedTemplates:
        """The gallery, re-read every ``refresh_seconds`` (the last good copy if a read fails)."""
        now = self._clock()
        if self._templates is None or now - self._loaded_at >= self.refresh_seconds:
            try:
                self._templates = self.gallery.templates()
            except (StoreLensError, OSError) as exc:
                log.warning("edge gallery unreadable, keeping the previous one: %s", exc)
                if self._templates is None:
                    raise
            self._loaded_at = now
        return self._templates

    def match(self, crops: Sequence[FaceCrop], detector: str) -> str | None:
        """The consented customer the crops show, or ``None``."""
        templates = self.templates()
        if not len(templates) or not crops:
            return None
        try:
            vectors = [v for v in self.embedder.embed_crops(crops, detector=detector) if v is not None]
        except StoreLensError:
            return None  # no usable face in any crop: nobody we can match
        self.stats.crops_embedded += len(crops)
        best, owner = 0.0, None
        for vector in vectors:
            distances = np.linalg.norm(templates.vectors - np.asarray(vector, np.float32), axis=1)
            i = int(np.argmin(distances))
            similarity = 1.0 - float(distances[i])
            if similarity > best:
                best, owner = similarity, templates.customer_ids[i]
        return owner if best >= self.threshold else None

    # -------------------------------------------------------------- emissions
    def split(
        self,
        emissions: Sequence[Emission],
        live_tracks: Mapping[str, Any],
        context: Any,
        detector: str,
    ) -> tuple[list[Emission], list[FaceEvent]]:
        """Emissions to send with crops, and anonymous events of unmatched tracks that ended.

        ``live_tracks`` is the tracker's ``tracks`` after this round (each with
        ``started_at`` / ``last_seen_at``); ``context`` the pipeline's
        :class:`~deeplens_lambda.pipeline.EdgeContext`.
        """
        send: list[Emission] = []
        for emission in emissions:
            tid = emission.track_id
            if tid not in self._matched and self.match(_crops(emission), detector) is not None:
                self._matched.add(tid)
                self.stats.matched_tracks += 1
                self._held.pop(tid, None)
            if tid in self._matched:
                send.append(emission)
                continue
            times = [c.captured_at for c in emission.candidates]
            times += self._spans.get(tid, ())
            best = emission.candidate
            held = self._held.setdefault(
                tid, _Held(min(times), max(times), best.frame_width, best.frame_height)
            )
            held.first, held.last = min(held.first, *times), max(held.last, *times)
        ended: list[FaceEvent] = []
        for tid in list(self._held):
            track = live_tracks.get(tid)
            if track is not None:
                held = self._held[tid]
                held.first = min(held.first, track.started_at)
                held.last = max(held.last, track.last_seen_at)
                continue
            ended.append(self._anonymous(tid, self._held.pop(tid), context, detector))
        self._matched &= set(live_tracks) | {e.track_id for e in emissions}
        self._spans = {tid: (t.started_at, t.last_seen_at) for tid, t in live_tracks.items()}
        return send, ended

    def flush(
        self, emissions: Sequence[Emission], context: Any, detector: str
    ) -> tuple[list[Emission], list[FaceEvent]]:
        """End of stream: every track has ended."""
        send, ended = self.split(emissions, {}, context, detector)
        self._matched.clear()
        return send, ended

    def _anonymous(self, track_id: str, held: _Held, context: Any, detector: str) -> FaceEvent:
        self.stats.anonymous_tracks += 1
        return FaceEvent.anonymous(
            event_id=str(uuid.uuid4()),
            store_id=context.store_id,
            camera_id=context.camera_id,
            zone=context.zone,
            frame_width=held.frame_width,
            frame_height=held.frame_height,
            detector=detector,
            track_id=track_id,
            first_seen_at=held.first,
            last_seen_at=held.last,
        )


def _crops(emission: Emission) -> list[FaceCrop]:
    """The emission's crops as the embedder takes them (JPEG, face box, landmarks), in memory only."""
    out = []
    for c in emission.candidates:
        ok, buf = cv2.imencode(".jpg", c.crop, [int(cv2.IMWRITE_JPEG_QUALITY), 95])
        if not ok:
            continue
        out.append(
            FaceCrop(
                jpeg=buf.tobytes(),
                bbox=c.bbox,
                face=c.face,
                captured_at=c.captured_at,
                confidence=float(min(1.0, max(0.0, c.confidence))),
                quality=float(min(1.0, max(0.0, c.quality.total))),
                landmarks=c.landmarks,
            )
        )
    return out


def gate_for(
    settings: Settings,
    *,
    embedder: FaceEmbedder | None = None,
    s3_client: Any = None,
    scratch_dir: Path | None = None,
) -> UnmatchedGate:
    """The gate an edge agent builds from the backend's settings.

    Local: the store's SQLite templates (the edge runs next to the store, or reads
    a copy of its data dir). AWS: the gallery object in ``STORELENS_S3_BUCKET``,
    read with ``s3_client`` (default: boto3 with the edge's own credentials).
    The embedder defaults to the local engine on ``scratch_dir`` (it writes no
    template there: ``embed_crops`` only computes).
    """
    from core.local.faces import LocalFaceIndex

    gallery: ConsentGallery
    if settings.backend == "aws":
        from core.aws.s3 import S3BlobStore
        from core.gallery import BlobGallery

        blobs = S3BlobStore(
            bucket=settings.s3_bucket,
            client=s3_client,
            region=settings.aws_region,
            endpoint_url=settings.endpoint_for("s3"),
        )
        gallery = BlobGallery(blobs)
    else:
        from core.local.gallery import SqliteConsentGallery

        gallery = SqliteConsentGallery(settings.data_dir, settings.collection_id)
    if embedder is None:
        embedder = LocalFaceIndex(scratch_dir or settings.data_dir)
    return UnmatchedGate(embedder, gallery, threshold=settings.match_threshold)
