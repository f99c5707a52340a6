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
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ConflictError
from core.models import Band, FaceMatch, FaceStatus, PendingStatus
from core.ports import FaceIndex, Repositories
from core.settings import Settings

#: How many nearest faces to look at; enough to see several templates of the
#: best few candidates.
SEARCH_DEPTH = 20


@dataclass(frozen=True, slots=True)
class Candidate:
    """An owner of indexed faces and its best similarity to the probe."""

    owner_id: str
    similarity: float
    face_count: int


@dataclass(frozen=True, slots=True)
class Recognition:
    """The policy's verdict for one face image."""

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

    def recognise(self, image: bytes) -> Recognition:
        """Classify the largest face in ``image`` (a crop or a photo)."""
        floor = min(self.settings.review_threshold, self.settings.cluster_threshold)
        hits = self.faces.search_by_image(self.collection_id, image, floor, SEARCH_DEPTH)
        return self.decide(hits)

    def decide(self, hits: Sequence[FaceMatch]) -> Recognition:
        """Apply the policy to search hits (exposed for tests and the AWS path)."""
        owners = self.repos.faces.by_index_face_ids([h.face_id for h in hits])
        customers: dict[str, list[float]] = {}
        pendings: dict[str, list[float]] = {}
        suppressed: dict[str, list[float]] = {}
        for hit in hits:
            face = owners.get(hit.face_id)
            if face is None:
                continue  # index entry without a row: left over from an interrupted write
            if face.status is FaceStatus.SUPPRESSED:
                suppressed.setdefault(face.pending_id or face.face_id, []).append(hit.similarity)
            elif face.status is FaceStatus.CUSTOMER and face.customer_id:
                customers.setdefault(face.customer_id, []).append(hit.similarity)
            elif face.status is FaceStatus.PENDING and face.pending_id:
                pendings.setdefault(face.pending_id, []).append(hit.similarity)

        best_dnt = _best(suppressed)
        if best_dnt and best_dnt.similarity >= self.settings.cluster_threshold:
            return Recognition(Band.NEW, best_dnt.similarity, suppressed_by=best_dnt.owner_id)

        ranked = _ranked(customers)
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
        for cand in _ranked(pendings):
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


def _ranked(groups: dict[str, list[float]]) -> list[Candidate]:
    # A customer's score is their best template's similarity: several templates
    # (angles, lighting) widen what matches without averaging away a good hit.
    cands = [Candidate(owner, max(sims), len(sims)) for owner, sims in groups.items()]
    return sorted(cands, key=lambda c: c.similarity, reverse=True)


def _best(groups: dict[str, list[float]]) -> Candidate | None:
    ranked = _ranked(groups)
    return ranked[0] if ranked else None
