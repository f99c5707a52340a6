"""The consented customers' templates for edge agents that send no crop of anyone else.

An edge agent with ``unmatched = "anonymous"`` (``docs/edge.md``) embeds each
track's best crops itself and compares them with the templates of customers who
consented; a track that matches none is published as an anonymous sighting
without any face. The templates reach the edge through a
:class:`~core.ports.ConsentGallery`:

* **local**: :class:`core.local.gallery.SqliteConsentGallery` reads the store's
  face index directly (the same dlib/ONNX templates ingest searches);
* **AWS**: one object, :data:`GALLERY_KEY` in the crops bucket (encrypted at rest
  with the bucket's key), read by the edge through :class:`BlobGallery` over an
  :class:`~core.aws.s3.S3BlobStore` with its own client, and rewritten as a whole by
  :class:`GalleryPublisher` when a customer is enrolled, erased, withdraws or is
  retired (``STORELENS_EDGE_GALLERY=true``).

Rekognition keeps no vectors the edge could use, so the publisher embeds the
customers' stored face photos with the local engine (dlib's ResNet under
ONNX, :mod:`core.local.engine`) where that is installed (the dashboard, the CLI).
A process without it (a Lambda) can still *remove* people from the gallery,
never add them; it keeps the templates it cannot recompute from the previous
object only for customers who still exist, consented and still own that face.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from core.errors import MissingDependencyError, NotFoundError, StoreLensError, ValidationError
from core.ports import BlobStore, ConsentedTemplates, Repositories

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from core.ports import GalleryStore

log = logging.getLogger(__name__)

#: Where the AWS backend writes the gallery in the crops bucket.
GALLERY_KEY = "edge/consented-templates.json"
#: Bumped when the JSON layout changes.
GALLERY_FORMAT = 1
#: Template length (dlib's ResNet descriptor).
DIM = 128

#: Turns a face photo into a template (``FaceNotFoundError`` when it has none).
ImageEmbedder = Callable[[bytes], "NDArray[np.float32]"]


def empty_templates() -> ConsentedTemplates:
    return ConsentedTemplates((), (), np.zeros((0, DIM), np.float32))


def encode_templates(templates: ConsentedTemplates, now: datetime | None = None) -> bytes:
    """The gallery object: JSON with each template as base64 little-endian float32."""
    rows = [
        {
            "customer_id": cid,
            "face_id": fid,
            "vector": base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode("ascii"),
        }
        for cid, fid, vec in zip(templates.customer_ids, templates.face_ids, templates.vectors, strict=True)
    ]
    doc = {
        "format": GALLERY_FORMAT,
        "written_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "templates": rows,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def decode_templates(data: bytes) -> ConsentedTemplates:
    """Parse :func:`encode_templates`' output; ``ValidationError`` if it is not one."""
    try:
        doc = json.loads(data)
        if doc.get("format") != GALLERY_FORMAT:
            raise ValidationError(f"gallery format {doc.get('format')!r}; this build reads {GALLERY_FORMAT}")
        rows = doc["templates"]
        vectors = np.zeros((len(rows), DIM), np.float32)
        for i, row in enumerate(rows):
            vectors[i] = np.frombuffer(base64.b64decode(row["vector"], validate=True), dtype="<f4", count=DIM)
        return ConsentedTemplates(
            tuple(str(r["customer_id"]) for r in rows), tuple(str(r["face_id"]) for r in rows), vectors
        )
    except ValidationError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(f"the gallery object is malformed: {exc}") from exc


class BlobGallery:
    """A :class:`~core.ports.GalleryStore` kept as one object of a :class:`~core.ports.BlobStore`.

    On AWS the blob store is the crops bucket (SSE-KMS by the bucket's default);
    the edge builds its own ``S3BlobStore(bucket=..., client=...)`` to read it.
    """

    def __init__(self, blobs: BlobStore, key: str = GALLERY_KEY) -> None:
        self.blobs = blobs
        self.key = key

    def templates(self) -> ConsentedTemplates:
        try:
            data = self.blobs.get(self.key)
        except NotFoundError:
            return empty_templates()
        return decode_templates(data)

    def write(self, templates: ConsentedTemplates) -> None:
        self.blobs.put(self.key, encode_templates(templates), content_type="application/json")


def local_image_embedder() -> ImageEmbedder | None:
    """The local engine's photo embedder, or ``None`` where dlib/onnxruntime are not installed."""
    try:
        from core.local.engine import get_engine
    except ImportError:
        return None

    def embed(image: bytes) -> NDArray[np.float32]:
        return get_engine().embed_largest(image)[0]

    return embed


class GalleryPublisher:
    """Rewrites the gallery object from the repositories (AWS, ``STORELENS_EDGE_GALLERY``)."""

    def __init__(
        self,
        *,
        repos: Repositories,
        blobs: BlobStore,
        store: GalleryStore,
        embed: ImageEmbedder | None,
    ) -> None:
        self.repos = repos
        self.blobs = blobs
        self.store = store
        self.embed = embed

    def refresh(self) -> ConsentedTemplates:
        """Write the templates of every consented customer's indexed photos; return them.

        Templates already in the object are reused by face id (only new photos are
        embedded); erased, withdrawn and retired customers' rows are dropped because
        they no longer own any face. Never raises for one bad photo.
        """
        try:
            known = self.store.templates()
        except ValidationError:
            log.warning("the edge gallery object is unreadable; rebuilding it")
            known = empty_templates()
        previous = {fid: vec for fid, vec in zip(known.face_ids, known.vectors, strict=True)}
        ids: list[str] = []
        faces: list[str] = []
        vectors: list[NDArray[np.float32]] = []
        missing = 0
        for customer in self.repos.customers.list(limit=1_000_000):
            if not customer.consent:
                continue
            for face in self.repos.faces.by_customer(customer.customer_id):
                if not face.index_face_id or not face.crop_key:
                    continue  # not a recognition template
                vector = previous.get(face.face_id)
                if vector is None:
                    vector = self._embed(face.crop_key)
                if vector is None:
                    missing += 1
                    continue
                ids.append(customer.customer_id)
                faces.append(face.face_id)
                vectors.append(np.asarray(vector, np.float32))
        matrix = np.stack(vectors) if vectors else np.zeros((0, DIM), np.float32)
        templates = ConsentedTemplates(tuple(ids), tuple(faces), matrix)
        self.store.write(templates)
        if missing:
            log.warning("edge gallery: %d customer photo(s) could not be embedded here", missing)
        return templates

    def _embed(self, crop_key: str) -> NDArray[np.float32] | None:
        if self.embed is None:
            return None
        try:
            return self.embed(self.blobs.get(crop_key))
        except MissingDependencyError:
            self.embed = None  # this process cannot embed: stop trying
            return None
        except StoreLensError:
            return None


__all__ = [
    "GALLERY_KEY",
    "BlobGallery",
    "GalleryPublisher",
    "decode_templates",
    "empty_templates",
    "encode_templates",
    "local_image_embedder",
]
