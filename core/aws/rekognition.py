"""RekognitionFaceIndex: the FaceIndex port on Amazon Rekognition collections.

Two conversions happen here and nowhere else:

* **Boxes.** Rekognition returns ``BoundingBox`` as ratios of the image size;
  :func:`_from_rekognition_box` turns them into integer pixels of the image
  (see :class:`core.models.BoundingBox`).
* **Scores.** Rekognition similarity is a percentage, and nearly every true
  match sits above 99 while its default threshold is 80. The recognition
  policy's bands are on the local scale (``1 - dlib distance``: match at
  0.55, review at 0.42). :func:`similarity_from_rekognition` maps one onto the
  other piecewise-linearly through the knots in :data:`CALIBRATION`, so that

  ========================== ============= ==================================
  Rekognition similarity     common scale  meaning for the default policy
  ========================== ============= ==================================
  100                        0.80          certain
  99 (AWS's recommendation   0.55          ``match_threshold``: "confident"
  for identity use)
  80 (Rekognition default)   0.42          ``review_threshold``: "possible"
  0                          0.00          nobody
  ========================== ============= ==================================

  The mapping is monotone, so thresholds convert back exactly with
  :func:`similarity_to_rekognition` when they become ``FaceMatchThreshold``.

``ExternalImageId`` is always the opaque id the caller passes (``cus_...``,
``pid_...``); names never reach Rekognition.

>>> round(similarity_from_rekognition(99.0), 2), round(similarity_from_rekognition(80.0), 2)
(0.55, 0.42)
>>> round(similarity_to_rekognition(0.55), 1)
99.0
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from core.aws._common import AwsAdapter, error_code, error_message
from core.errors import (
    ConflictError,
    FaceNotFoundError,
    ImageDecodeError,
    NotFoundError,
    PayloadTooLargeError,
    StoreLensError,
)
from core.models import BoundingBox, DetectedFace, FaceCrop, FaceMatch, IndexedFace

#: (Rekognition similarity %, common-scale similarity) knots, increasing in both.
CALIBRATION: tuple[tuple[float, float], ...] = ((0.0, 0.0), (80.0, 0.42), (99.0, 0.55), (100.0, 0.80))
_T = TypeVar("_T")
_U = TypeVar("_U")

#: Rekognition accepts at most 4096 face ids per DeleteFaces call.
_DELETE_BATCH = 4096


def _interpolate(x: float, points: Sequence[tuple[float, float]]) -> float:
    x = min(max(x, points[0][0]), points[-1][0])
    for (x0, y0), (x1, y1) in pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def similarity_from_rekognition(percent: float) -> float:
    """Rekognition's 0-100 similarity on the common 0..1 scale (see module doc)."""
    return _interpolate(float(percent), CALIBRATION)


def similarity_to_rekognition(similarity: float) -> float:
    """The inverse: a common-scale threshold as a Rekognition ``FaceMatchThreshold``."""
    return _interpolate(float(similarity), [(y, x) for x, y in CALIBRATION])


def _image_size(image: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as img:
            return int(img.width), int(img.height)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageDecodeError(f"image does not decode: {exc}") from exc


def _from_rekognition_box(box: dict[str, float], width: int, height: int) -> BoundingBox:
    """Rekognition's ratio box (may spill past the edges) -> pixels, clipped to the image."""
    left = round(float(box.get("Left", 0.0)) * width)
    top = round(float(box.get("Top", 0.0)) * height)
    w = round(float(box.get("Width", 0.0)) * width)
    h = round(float(box.get("Height", 0.0)) * height)
    return BoundingBox(left, top, w, h).clip(width, height)


def _per_crop(crops: Sequence[FaceCrop], call: Callable[[FaceCrop], _T], missing: _U) -> list[_T | _U]:
    """``call`` on every crop; ``missing`` for a crop without a usable face, unless all fail."""
    out: list[_T | _U] = []
    errors: list[StoreLensError] = []
    for crop in crops:
        try:
            out.append(call(crop))
        except (FaceNotFoundError, ImageDecodeError) as exc:
            # NotFoundError (no collection) and service errors are not about the
            # crop: they propagate at once.
            errors.append(exc)
            out.append(copy.copy(missing))
    if errors and len(errors) == len(out):
        raise errors[0]
    return out


class RekognitionFaceIndex(AwsAdapter):
    """Implements ``core.ports.FaceIndex`` on Rekognition collections.

    >>> index = RekognitionFaceIndex(client=rekognition_client)      # doctest: +SKIP
    >>> index.index_face("storelens-faces", jpeg, "pid_3f2a")         # doctest: +SKIP
    IndexedFace(face_id='...', external_id='pid_3f2a', ...)
    """

    service = "rekognition"

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        quality_filter: str = "AUTO",
    ) -> None:
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)
        self.quality_filter = quality_filter

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call Rekognition, translating its error codes into StoreLens errors."""
        try:
            return dict(getattr(self.client, operation)(**params))
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            if code == "ResourceAlreadyExistsException":
                raise ConflictError(f"collection {params.get('CollectionId')} already exists") from exc
            if code == "ResourceNotFoundException":
                raise NotFoundError(f"collection {params.get('CollectionId')} does not exist") from exc
            if code == "InvalidImageFormatException":
                raise ImageDecodeError(f"Rekognition cannot decode the image: {message}") from exc
            if code == "ImageTooLargeException":
                raise PayloadTooLargeError(f"image too large for Rekognition: {message}") from exc
            if code == "InvalidParameterException" and "face" in message.lower():
                # SearchFacesByImage answers "There are no faces in the image".
                raise FaceNotFoundError(f"no face found: {message}") from exc
            raise

    # ----------------------------------------------------------- collections
    def create_collection(self, collection_id: str) -> None:
        self._call("create_collection", CollectionId=collection_id)

    def delete_collection(self, collection_id: str) -> None:
        self._call("delete_collection", CollectionId=collection_id)

    def list_collections(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {}
        while True:
            resp = self._call("list_collections", **params)
            ids.extend(resp.get("CollectionIds", []))
            token = resp.get("NextToken")
            if not token:
                return sorted(ids)
            params["NextToken"] = token

    # ---------------------------------------------------------------- faces
    def detect_faces(self, image: bytes) -> list[DetectedFace]:
        width, height = _image_size(image)
        resp = self._call("detect_faces", Image={"Bytes": image}, Attributes=["DEFAULT"])
        faces = [
            DetectedFace(
                bbox=_from_rekognition_box(d["BoundingBox"], width, height),
                confidence=float(d.get("Confidence", 0.0)) / 100.0,
            )
            for d in resp.get("FaceDetails", [])
        ]
        return sorted(faces, key=lambda f: f.bbox.area, reverse=True)

    def index_face(self, collection_id: str, image: bytes, external_id: str) -> IndexedFace:
        """Index the largest face (``MaxFaces=1``) under the opaque ``external_id``."""
        width, height = _image_size(image)
        resp = self._call(
            "index_faces",
            CollectionId=collection_id,
            Image={"Bytes": image},
            ExternalImageId=external_id,
            DetectionAttributes=["DEFAULT"],
            MaxFaces=1,
            QualityFilter=self.quality_filter,
        )
        records = resp.get("FaceRecords", [])
        if not records:
            reasons = sorted({r for u in resp.get("UnindexedFaces", []) for r in u.get("Reasons", [])})
            detail = f" (filtered: {', '.join(reasons)})" if reasons else ""
            raise FaceNotFoundError(f"no indexable face in the image{detail}")
        face = records[0]["Face"]
        return IndexedFace(
            face_id=face["FaceId"],
            external_id=face.get("ExternalImageId", external_id),
            bbox=_from_rekognition_box(face["BoundingBox"], width, height) if "BoundingBox" in face else None,
            confidence=float(face.get("Confidence", 100.0)) / 100.0,
        )

    def search_by_image(
        self, collection_id: str, image: bytes, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        resp = self._call(
            "search_faces_by_image",
            CollectionId=collection_id,
            Image={"Bytes": image},
            MaxFaces=max_results,
            FaceMatchThreshold=similarity_to_rekognition(threshold),
            QualityFilter="NONE",
        )
        return self._matches(resp, threshold)

    def search_by_face(
        self, collection_id: str, face_id: str, threshold: float, max_results: int
    ) -> list[FaceMatch]:
        resp = self._call(
            "search_faces",
            CollectionId=collection_id,
            FaceId=face_id,
            MaxFaces=max_results,
            FaceMatchThreshold=similarity_to_rekognition(threshold),
        )
        return [m for m in self._matches(resp, threshold) if m.face_id != face_id]

    def search_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        threshold: float,
        max_results: int,
        *,
        detector: str | None = None,
    ) -> list[list[FaceMatch]]:
        """One SearchFacesByImage per crop (Rekognition finds the crop's largest face itself).

        Similarities go through the same calibration as :meth:`search_by_image`;
        a crop Rekognition finds no face in gets ``[]`` (all failing raises).
        """
        return _per_crop(
            crops, lambda crop: self.search_by_image(collection_id, crop.jpeg, threshold, max_results), []
        )

    def index_crops(
        self,
        collection_id: str,
        crops: Sequence[FaceCrop],
        external_id: str,
        *,
        detector: str | None = None,
    ) -> list[IndexedFace | None]:
        """One IndexFaces per crop; ``None`` where Rekognition finds (or keeps) no face.

        ``detector`` is not needed: Rekognition detects the face in each crop itself.
        """
        return _per_crop(crops, lambda crop: self.index_face(collection_id, crop.jpeg, external_id), None)

    @staticmethod
    def _matches(resp: dict[str, Any], threshold: float) -> list[FaceMatch]:
        matches = [
            FaceMatch(
                face_id=m["Face"]["FaceId"],
                external_id=m["Face"].get("ExternalImageId", ""),
                similarity=similarity_from_rekognition(m.get("Similarity", 0.0)),
            )
            for m in resp.get("FaceMatches", [])
        ]
        # Guard against rounding at the threshold in the inverse mapping.
        matches = [m for m in matches if m.similarity >= threshold - 1e-9]
        return sorted(matches, key=lambda m: m.similarity, reverse=True)

    def list_faces(self, collection_id: str) -> list[IndexedFace]:
        out: list[IndexedFace] = []
        params: dict[str, Any] = {"CollectionId": collection_id, "MaxResults": 4096}
        while True:
            resp = self._call("list_faces", **params)
            out.extend(
                IndexedFace(
                    face_id=f["FaceId"],
                    external_id=f.get("ExternalImageId", ""),
                    confidence=float(f.get("Confidence", 100.0)) / 100.0,
                )
                for f in resp.get("Faces", [])
            )
            token = resp.get("NextToken")
            if not token:
                return out
            params["NextToken"] = token

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(face_ids))
        for start in range(0, len(ids), _DELETE_BATCH):
            # Unknown ids come back in UnsuccessfulFaceDeletions; the port ignores them.
            self._call("delete_faces", CollectionId=collection_id, FaceIds=ids[start : start + _DELETE_BATCH])
