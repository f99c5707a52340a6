"""A behavioural stand-in for Rekognition collections, at botocore's edge.

moto has no Rekognition collections and a ``Stubber`` replays fixed answers, so
neither can run the FaceIndex contract (which asks whether *this* photo matches
*that* one). This fake answers a real boto3 client's calls from botocore's
``before-call`` event, after botocore has validated every request against the
service model, so ``RekognitionFaceIndex`` runs unchanged: its parameters, its
ratio-box and percent conversions, its paging and its error translation.

Faces are detected and embedded by the local dlib engine. A match's
``Similarity`` is the local similarity ``1 - distance`` expressed through the
adapter's inverse calibration, i.e. the fake behaves like a Rekognition whose
scores sit exactly on the documented calibration curve. It says nothing about
real Rekognition accuracy; it checks that the adapter keeps the contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import ImageDecodeError


@dataclass
class _Face:
    face_id: str
    external_id: str
    vector: Any
    box: dict[str, float]
    confidence: float


@dataclass
class FakeRekognition:
    """In-memory collections shared by every client it is attached to."""

    engine: Any
    collections: dict[str, dict[str, _Face]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.rekognition.*", self._answer)
        return client

    # ------------------------------------------------------------ plumbing
    def _answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        """``params`` is the serialised request (JSON protocol): decode it as the service would."""
        import base64
        import json

        from botocore.awsrequest import AWSResponse

        body_raw = params.get("body") or b"{}"
        params = json.loads(body_raw.decode() if isinstance(body_raw, bytes) else body_raw)
        if "Bytes" in params.get("Image", {}):
            params["Image"]["Bytes"] = base64.b64decode(params["Image"]["Bytes"])
        name = model.name
        self.calls.append(name)
        try:
            body = getattr(self, f"_{name}")(params)
            status = 200
        except _Error as err:
            body, status = {"Error": {"Code": err.code, "Message": err.message}}, 400
        body.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())})
        return AWSResponse("https://rekognition.fake", status, {}, None), body

    def _collection(self, params: dict[str, Any]) -> dict[str, _Face]:
        try:
            return self.collections[params["CollectionId"]]
        except KeyError:
            raise _Error(
                "ResourceNotFoundException", f"The collection id: {params['CollectionId']} does not exist"
            ) from None

    def _faces_in(self, image: bytes) -> list[tuple[Any, dict[str, float], float]]:
        try:
            rgb = self.engine.decode(image)
        except ImageDecodeError as exc:
            raise _Error("InvalidImageFormatException", f"Request has invalid image format: {exc}") from None
        height, width = rgb.shape[:2]
        out = []
        for face in self.engine.detect(rgb):
            b = face.bbox
            box = {
                "Width": b.width / width,
                "Height": b.height / height,
                "Left": b.left / width,
                "Top": b.top / height,
            }
            out.append((self.engine.embed(rgb, b), box, face.confidence * 100.0))
        return out  # largest first, as the engine returns them

    def _matches(
        self, vector: Any, faces: dict[str, _Face], params: dict[str, Any], exclude: str | None = None
    ) -> list[dict[str, Any]]:
        from core.aws.rekognition import similarity_to_rekognition

        threshold = float(params.get("FaceMatchThreshold", 80.0))
        hits = []
        for face in faces.values():
            if face.face_id == exclude:
                continue
            distance = float(np.linalg.norm(np.asarray(vector) - np.asarray(face.vector)))
            percent = similarity_to_rekognition(min(1.0, max(0.0, 1.0 - distance)))
            if percent >= threshold:
                hits.append({"Similarity": percent, "Face": self._face_doc(face)})
        hits.sort(key=lambda h: h["Similarity"], reverse=True)
        return hits[: int(params.get("MaxFaces", 80))]

    @staticmethod
    def _face_doc(face: _Face) -> dict[str, Any]:
        return {
            "FaceId": face.face_id,
            "ExternalImageId": face.external_id,
            "BoundingBox": face.box,
            "Confidence": face.confidence,
            "ImageId": str(uuid.uuid4()),
        }

    # ---------------------------------------------------------- operations
    def _CreateCollection(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["CollectionId"] in self.collections:
            raise _Error(
                "ResourceAlreadyExistsException",
                f"The collection id: {params['CollectionId']} already exists",
            )
        self.collections[params["CollectionId"]] = {}
        return {"StatusCode": 200, "FaceModelVersion": "7.0"}

    def _DeleteCollection(self, params: dict[str, Any]) -> dict[str, Any]:
        self._collection(params)
        del self.collections[params["CollectionId"]]
        return {"StatusCode": 200}

    def _ListCollections(self, params: dict[str, Any]) -> dict[str, Any]:
        names = sorted(self.collections)
        start = int(params.get("NextToken") or 0)
        page = names[start : start + 2]  # tiny pages so the adapter's paging is exercised
        body: dict[str, Any] = {"CollectionIds": page}
        if start + 2 < len(names):
            body["NextToken"] = str(start + 2)
        return body

    def _DetectFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = self._faces_in(params["Image"]["Bytes"])
        return {"FaceDetails": [{"BoundingBox": box, "Confidence": conf} for _v, box, conf in faces]}

    def _IndexFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        faces = self._faces_in(params["Image"]["Bytes"])[: int(params.get("MaxFaces", 100))]
        records = []
        for vector, box, conf in faces:
            face = _Face(str(uuid.uuid4()), params.get("ExternalImageId", ""), vector, box, conf)
            collection[face.face_id] = face
            detail = {"BoundingBox": box, "Confidence": conf}
            records.append({"Face": self._face_doc(face), "FaceDetail": detail})
        return {"FaceRecords": records, "UnindexedFaces": [], "FaceModelVersion": "7.0"}

    def _SearchFacesByImage(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        faces = self._faces_in(params["Image"]["Bytes"])
        if not faces:
            raise _Error(
                "InvalidParameterException", "There are no faces in the image. Should be at least 1."
            )
        vector, box, conf = faces[0]
        return {
            "SearchedFaceBoundingBox": box,
            "SearchedFaceConfidence": conf,
            "FaceMatches": self._matches(vector, collection, params),
        }

    def _SearchFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        if params["FaceId"] not in collection:
            raise _Error("InvalidParameterException", "Invalid face id")
        source = collection[params["FaceId"]]
        return {
            "SearchedFaceId": source.face_id,
            "FaceMatches": self._matches(source.vector, collection, params, exclude=source.face_id),
        }

    def _ListFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = list(self._collection(params).values())
        start = int(params.get("NextToken") or 0)
        size = min(int(params.get("MaxResults", 1000)), 1)  # one per page: exercise paging
        body: dict[str, Any] = {"Faces": [self._face_doc(f) for f in faces[start : start + size]]}
        if start + size < len(faces):
            body["NextToken"] = str(start + size)
        return body

    def _DeleteFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        # Unknown ids are silently skipped, as Rekognition does.
        deleted = [fid for fid in params["FaceIds"] if collection.pop(fid, None) is not None]
        return {"DeletedFaces": deleted}


class _Error(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def rekognition_index_factory() -> Any:
    """A ``make()`` for the FaceIndex contract: each call is a new client and
    ``RekognitionFaceIndex`` on the same fake service (so ``make()`` twice is a restart)."""
    import boto3

    from core.aws.rekognition import RekognitionFaceIndex
    from core.local.engine import get_engine

    fake = FakeRekognition(get_engine())

    def make() -> Any:
        client = boto3.client(
            "rekognition", region_name="eu-west-1", aws_access_key_id="fake", aws_secret_access_key="fake"
        )
        return RekognitionFaceIndex(client=fake.attach(client))

    return make
