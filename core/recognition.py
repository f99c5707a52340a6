"""The recognition policy: which band a face falls in, and who it may be.

Backend-independent: it asks the :class:`~core.ports.FaceIndex` for the nearest
indexed faces and the repositories for who owns them. Every indexed face
belongs to a customer (its template set), a pending identity (so a repeated
unknown clusters into one approval) or a do-not-track person (suppressed).

Bands, on the common similarity scale (see :mod:`core.settings` for why the
defaults are where they are):

* ``match``  best customer similarity >= ``match_threshold`` -> a visit
* ``review`` best customer similarity >= ``review_threshold`` -> a human
  confirms "possible returning customer" or says "not this person"
* ``new``    otherwise -> a pending identity (joined if one is similar enough)

An event carries several crops of one tracked person (schema v2). The policy
decides for the *person*: each candidate owner gets one combined score from
all crops (:func:`combine`, a quality-weighted trimmed mean of each crop's best
similarity to that owner), and the bands apply to that score. A v1 event or a
single photo is one crop, and its combined score is simply its similarity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ConflictError
from core.models import Band, FaceCrop, FaceMatch, FaceStatus, PendingStatus
from core.ports import FaceIndex, Repositories
from core.settings import Settings

#: How many nearest faces to look at; enough to see several templates of the
#: best few candidates.
SEARCH_DEPTH = 20
#: Several crops are searched this far below the lowest threshold that matters,
#: so a crop that is merely weak for a candidate still contributes its real
#: similarity instead of counting as no evidence (see :func:`combine`).
EVIDENCE_MARGIN = 0.15
#: A crop's weight is its edge quality, but never below this: a poor crop still
#: says something, and a v1 crop (quality 1.0) is not drowned out by it.
MIN_CROP_WEIGHT = 0.05


def combine(similarities: Sequence[float | None], weights: Sequence[float]) -> float:
    """One owner's combined score over the crops of one person.

    ``similarities[i]`` is crop *i*'s best similarity to the owner, ``None``
    when that crop had no hit for the owner at or above the search floor (or no
    usable face). The rule:

    * a missing hit counts as 0.0: the crop does not look like this owner at
      all (it is below the floor), and counting it as the floor instead would
      let one lucky crop of a two-crop event reach the match band alone;
    * with three or more crops, the lowest and the highest values are dropped
      (``n // 5`` of each from 10 crops on) before averaging -- a trimmed mean,
      so one lucky frame (a look-alike angle) cannot name anyone and one
      unlucky frame (blur, a turned head, a missed face) cannot hide them;
    * the rest are averaged weighted by crop quality (at least
      :data:`MIN_CROP_WEIGHT`), so sharp frontal crops count most.

    With one crop the score is that crop's similarity; with two it is their
    weighted mean (nothing can be trimmed: one lucky crop is halved by the
    other, one unlucky crop halves a good one -- send three or more).

    >>> combine([0.9, None, None, None, None], [1.0] * 5)   # one lucky crop
    0.0
    >>> round(combine([0.1, 0.62, 0.6, 0.64, 0.58], [1.0] * 5), 2)  # one unlucky crop
    0.6
    """
    if len(similarities) != len(weights) or not similarities:
        raise ValueError("combine needs one weight per crop and at least one crop")
    pairs = sorted(
        (
            (s if s is not None else 0.0, max(float(w), MIN_CROP_WEIGHT))
            for s, w in zip(similarities, weights, strict=True)
        ),
        key=lambda p: p[0],
    )
    if len(pairs) >= 3:
        cut = max(1, len(pairs) // 5)
        pairs = pairs[cut : len(pairs) - cut]
    total = sum(w for _s, w in pairs)
    return sum(s * w for s, w in pairs) / total


@dataclass(frozen=True, slots=True)
class Candidate:
    """An owner of indexed faces and its (combined) similarity to the probe.

    ``face_count`` is how many search hits belonged to the owner, over all crops.
    """

    owner_id: str
    similarity: float
    face_count: int


@dataclass(frozen=True, slots=True)
class Recognition:
    """The policy's verdict for one person (one face image or the crops of one track).

    ``similarity`` is the best customer's combined score; ``candidates`` the
    best customers by that score.
    """

    band: Band
    similarity: float | None = None
    customer_id: str | None = None
    pending_id: str | None = None
    suppressed_by: str | None = None
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None


class RecognitionPolicy:
    """Turns nearest-neighbour hits into a band and an owner."""

    def __init__(self, *, settings: Settings, faces: FaceIndex, repos: Repositories) -> None:
        self.settings = settings
        self.faces = faces
        self.repos = repos

    @property
    def collection_id(self) -> str:
        return self.settings.collection_id

    def ensure_collection(self) -> None:
        """Create the face collection on first use."""
        if self.collection_id not in self.faces.list_collections():
            # A concurrent cold start may have created it first: that is success.
            with contextlib.suppress(ConflictError):
                self.faces.create_collection(self.collection_id)

    def band_for(self, similarity: float | None) -> Band:
        """The band of a best-customer similarity."""
        if similarity is None or similarity < self.settings.review_threshold:
            return Band.NEW
        if similarity >= self.settings.match_threshold:
            return Band.MATCH
        return Band.REVIEW

    @property
    def search_floor(self) -> float:
        """The lowest similarity the single-image search asks for."""
        return min(self.settings.review_threshold, self.settings.cluster_threshold)

    def recognise(self, image: bytes) -> Recognition:
        """Classify the largest face in ``image`` (a photo, or a single crop)."""
        hits = self.faces.search_by_image(self.collection_id, image, self.search_floor, SEARCH_DEPTH)
        return self.decide(hits)

    def recognise_crops(self, crops: Sequence[FaceCrop], *, detector: str | None = None) -> Recognition:
        """Classify the person the crops of one track show, from all of them together.

        ``detector`` is the event's (it tells the face index how to read the
        crops' face boxes). Raises what :meth:`core.ports.FaceIndex.search_crops`
        raises when no crop has a usable face.
        """
        floor = max(0.0, self.search_floor - EVIDENCE_MARGIN)
        hits = self.faces.search_crops(self.collection_id, crops, floor, SEARCH_DEPTH, detector=detector)
        return self.decide_crops(hits, [c.quality for c in crops])

    def decide(self, hits: Sequence[FaceMatch]) -> Recognition:
        """Apply the policy to the search hits of one image (exposed for tests and the AWS path)."""
        return self.decide_crops([hits], [1.0])

    def decide_crops(self, hits: Sequence[Sequence[FaceMatch]], weights: Sequence[float]) -> Recognition:
        """Apply the policy to one hit list per crop, combined per owner with :func:`combine`."""
        owners = self.repos.faces.by_index_face_ids([h.face_id for crop in hits for h in crop])
        # owner -> per-crop best similarity (None: no hit in that crop)
        customers: dict[str, list[float | None]] = {}
        pendings: dict[str, list[float | None]] = {}
        suppressed: dict[str, list[float | None]] = {}
        counts: dict[str, int] = {}
        n = len(hits)
        for i, crop_hits in enumerate(hits):
            for hit in crop_hits:
                face = owners.get(hit.face_id)
                if face is None:
                    continue  # index entry without a row: left over from an interrupted write
                if face.status is FaceStatus.SUPPRESSED:
                    group, owner = suppressed, face.pending_id or face.face_id
                elif face.status is FaceStatus.CUSTOMER and face.customer_id:
                    group, owner = customers, face.customer_id
                elif face.status is FaceStatus.PENDING and face.pending_id:
                    group, owner = pendings, face.pending_id
                else:
                    continue
                sims = group.setdefault(owner, [None] * n)
                # A customer's score in one crop is their best template's
                # similarity: several templates (angles, lighting) widen what
                # matches without averaging away a good hit.
                current = sims[i]
                sims[i] = hit.similarity if current is None else max(current, hit.similarity)
                counts[owner] = counts.get(owner, 0) + 1

        # Do-not-track wins early: the combined score, or one confident crop
        # (a false suppression only drops one sighting; a missed one stores a
        # crop of someone who asked not to be tracked).
        for owner, sims in suppressed.items():
            best_crop = max(s for s in sims if s is not None)
            score = combine(sims, weights)
            if score >= self.settings.cluster_threshold or best_crop >= self.settings.match_threshold:
                return Recognition(Band.NEW, max(score, best_crop), suppressed_by=owner)

        ranked = _ranked(customers, weights, counts)
        best_customer = ranked[0] if ranked else None
        band = self.band_for(best_customer.similarity if best_customer else None)
        if band is Band.MATCH and best_customer:
            return Recognition(
                Band.MATCH,
                best_customer.similarity,
                customer_id=best_customer.owner_id,
                candidates=tuple(ranked[:5]),
            )

        pending_id = None
        for cand in _ranked(pendings, weights, counts):
            if cand.similarity < self.settings.cluster_threshold:
                break
            if self.repos.pending.get(cand.owner_id).status is PendingStatus.PENDING:
                pending_id = cand.owner_id
                break
        similarity = best_customer.similarity if best_customer else None
        return Recognition(
            band,
            similarity,
            customer_id=best_customer.owner_id if band is Band.REVIEW and best_customer else None,
            pending_id=pending_id,
            candidates=tuple(ranked[:5]),
        )


def _ranked(
    groups: dict[str, list[float | None]], weights: Sequence[float], counts: dict[str, int]
) -> list[Candidate]:
    cands = [Candidate(owner, combine(sims, weights), counts.get(owner, 0)) for owner, sims in groups.items()]
    return sorted(cands, key=lambda c: c.similarity, reverse=True)
