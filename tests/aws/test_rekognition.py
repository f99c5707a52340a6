"""RekognitionFaceIndex against botocore's Stubber: exact requests, conversions, errors.

moto has no Rekognition collections; the Stubber checks every request against
the real service model and our exact parameters.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from core.aws.rekognition import (
    CALIBRATION,
    RekognitionFaceIndex,
    _from_rekognition_box,
    similarity_from_rekognition,
    similarity_to_rekognition,
)
from core.errors import ConflictError, FaceNotFoundError, ImageDecodeError, NotFoundError
from core.models import BoundingBox, FaceCrop

FACE_A = "11111111-1111-1111-1111-111111111111"
FACE_B = "22222222-2222-2222-2222-222222222222"


def jpeg(width: int = 200, height: int = 100) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 110, 100)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def rek() -> Iterator[tuple[RekognitionFaceIndex, Stubber]]:
    client = boto3.client(
        "rekognition", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield RekognitionFaceIndex(client=client), stub
        stub.assert_no_pending_responses()


def _box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"Left": left, "Top": top, "Width": width, "Height": height}


def test_calibration_maps_aws_thresholds_onto_the_policy_bands() -> None:
    assert similarity_from_rekognition(99.0) == pytest.approx(0.55)
    assert similarity_from_rekognition(80.0) == pytest.approx(0.42)
    assert similarity_from_rekognition(100.0) == pytest.approx(0.80)
    assert similarity_from_rekognition(0.0) == 0.0
    assert similarity_from_rekognition(150.0) == pytest.approx(0.80)  # clipped
    for pct in (0, 12.5, 50, 80, 90, 95, 99, 99.5, 100):
        assert similarity_to_rekognition(similarity_from_rekognition(pct)) == pytest.approx(pct)
    values = [similarity_from_rekognition(p / 10) for p in range(0, 1001)]
    assert values == sorted(values)  # monotone, so thresholds convert exactly
    assert [k for k, _ in CALIBRATION] == sorted(k for k, _ in CALIBRATION)


def test_box_conversion_from_ratios_to_clipped_pixels() -> None:
    assert _from_rekognition_box(_box(0.25, 0.1, 0.5, 0.6), 200, 100) == BoundingBox(50, 10, 100, 60)
    # Rekognition boxes may spill over the edge; ours never do.
    assert _from_rekognition_box(_box(-0.1, 0.9, 0.5, 0.3), 200, 100) == BoundingBox(0, 90, 80, 10)


def test_collections(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    stub.add_response("create_collection", {"StatusCode": 200}, {"CollectionId": "c1"})
    stub.add_client_error(
        "create_collection",
        "ResourceAlreadyExistsException",
        "exists",
        expected_params={"CollectionId": "c1"},
    )
    stub.add_response("list_collections", {"CollectionIds": ["c2"], "NextToken": "t"}, {})
    stub.add_response("list_collections", {"CollectionIds": ["c1"]}, {"NextToken": "t"})
    stub.add_response("delete_collection", {"StatusCode": 200}, {"CollectionId": "c1"})
    stub.add_client_error(
        "delete_collection", "ResourceNotFoundException", "missing", expected_params={"CollectionId": "c1"}
    )
    index.create_collection("c1")
    with pytest.raises(ConflictError) as exc:
        index.create_collection("c1")
    assert exc.value.__cause__ is not None
    assert index.list_collections() == ["c1", "c2"]
    index.delete_collection("c1")
    with pytest.raises(NotFoundError):
        index.delete_collection("c1")


Rek = tuple[RekognitionFaceIndex, Stubber]


def test_index_face_uses_opaque_id_quality_filter_and_one_face(rek: Rek) -> None:
    index, stub = rek
    image = jpeg(200, 100)
    stub.add_response(
        "index_faces",
        {
            "FaceRecords": [
                {
                    "Face": {
                        "FaceId": FACE_A,
                        "ExternalImageId": "pid_1",
                        "Confidence": 99.0,
                        "BoundingBox": _box(0.25, 0.1, 0.5, 0.6),
                    }
                }
            ]
        },
        {
            "CollectionId": "c",
            "Image": {"Bytes": image},
            "ExternalImageId": "pid_1",
            "DetectionAttributes": ["DEFAULT"],
            "MaxFaces": 1,
            "QualityFilter": "AUTO",
        },
    )
    got = index.index_face("c", image, "pid_1")
    assert got.face_id == FACE_A and got.external_id == "pid_1"
    assert got.bbox == BoundingBox(50, 10, 100, 60) and got.confidence == pytest.approx(0.99)


def test_index_face_without_an_indexable_face(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    image = jpeg()
    stub.add_response("index_faces", {"FaceRecords": [], "UnindexedFaces": [{"Reasons": ["LOW_QUALITY"]}]})
    with pytest.raises(FaceNotFoundError, match="LOW_QUALITY"):
        index.index_face("c", image, "pid_1")


def test_search_by_image_converts_threshold_and_scores(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    image = jpeg()
    stub.add_response(
        "search_faces_by_image",
        {
            "FaceMatches": [
                {"Similarity": 85.0, "Face": {"FaceId": FACE_B, "ExternalImageId": "pid_2"}},
                {"Similarity": 99.5, "Face": {"FaceId": FACE_A, "ExternalImageId": "cus_1"}},
            ]
        },
        {
            "CollectionId": "c",
            "Image": {"Bytes": image},
            "MaxFaces": 5,
            "FaceMatchThreshold": 80.0,
            "QualityFilter": "NONE",
        },
    )
    hits = index.search_by_image("c", image, 0.42, 5)
    assert [h.external_id for h in hits] == ["cus_1", "pid_2"]
    assert hits[0].similarity == pytest.approx(similarity_from_rekognition(99.5))
    assert hits[0].similarity > 0.55 > hits[1].similarity > 0.42


def test_search_errors_are_translated(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    image = jpeg()
    stub.add_client_error(
        "search_faces_by_image",
        "InvalidParameterException",
        "There are no faces in the image. Should be at least 1.",
    )
    stub.add_client_error("search_faces_by_image", "InvalidImageFormatException", "Request has invalid image")
    stub.add_client_error("search_faces_by_image", "ResourceNotFoundException", "no collection")
    stub.add_client_error("search_faces_by_image", "ThrottlingException", "slow down")
    with pytest.raises(FaceNotFoundError):
        index.search_by_image("c", image, 0.5, 3)
    with pytest.raises(ImageDecodeError):
        index.search_by_image("c", image, 0.5, 3)
    with pytest.raises(NotFoundError):
        index.search_by_image("c", image, 0.5, 3)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):  # anything else is re-raised untouched
        index.search_by_image("c", image, 0.5, 3)


def test_undecodable_bytes_fail_before_any_request(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, _stub = rek
    with pytest.raises(ImageDecodeError):
        index.detect_faces(b"not an image")


def test_search_by_face_excludes_itself(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    stub.add_response(
        "search_faces",
        {
            "SearchedFaceId": FACE_A,
            "FaceMatches": [{"Similarity": 99.9, "Face": {"FaceId": FACE_B, "ExternalImageId": "cus_2"}}],
        },
        {"CollectionId": "c", "FaceId": FACE_A, "MaxFaces": 3, "FaceMatchThreshold": 99.0},
    )
    [hit] = index.search_by_face("c", FACE_A, 0.55, 3)
    assert hit.face_id == FACE_B and hit.similarity > 0.55


def test_detect_faces_largest_first_in_pixels(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    image = jpeg(200, 100)
    stub.add_response(
        "detect_faces",
        {
            "FaceDetails": [
                {"BoundingBox": _box(0.0, 0.0, 0.1, 0.2), "Confidence": 90.0},
                {"BoundingBox": _box(0.5, 0.2, 0.3, 0.6), "Confidence": 99.0},
            ]
        },
        {"Image": {"Bytes": image}, "Attributes": ["DEFAULT"]},
    )
    faces = index.detect_faces(image)
    assert [f.bbox for f in faces] == [BoundingBox(100, 20, 60, 60), BoundingBox(0, 0, 20, 20)]
    assert faces[0].confidence == pytest.approx(0.99)


def test_list_faces_paginates_and_delete_batches(rek: tuple[RekognitionFaceIndex, Stubber]) -> None:
    index, stub = rek
    stub.add_response(
        "list_faces",
        {"Faces": [{"FaceId": FACE_A, "ExternalImageId": "cus_1"}], "NextToken": "n"},
        {"CollectionId": "c", "MaxResults": 4096},
    )
    stub.add_response(
        "list_faces",
        {"Faces": [{"FaceId": FACE_B, "ExternalImageId": "pid_1"}]},
        {"CollectionId": "c", "MaxResults": 4096, "NextToken": "n"},
    )
    ids: list[Any] = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(4100)]
    for chunk in (ids[:4096], ids[4096:]):
        stub.add_response("delete_faces", {"DeletedFaces": chunk}, {"CollectionId": "c", "FaceIds": chunk})
    got = [(f.face_id, f.external_id) for f in index.list_faces("c")]
    assert got == [(FACE_A, "cus_1"), (FACE_B, "pid_1")]
    index.delete_faces("c", ids + ids[:3])  # duplicates collapse


def test_no_client_until_first_use() -> None:
    assert RekognitionFaceIndex()._client is None


def test_a_concurrent_cold_start_creating_the_collection_first_is_success() -> None:
    """Two containers start at once: the loser's ResourceAlreadyExists is not an error."""
    from botocore.stub import Stubber

    from core.aws.rekognition import RekognitionFaceIndex
    from core.recognition import RecognitionPolicy
    from core.settings import Settings
    from tests.aws.moto_support import client

    rekognition = client("rekognition")
    stub = Stubber(rekognition)
    stub.add_response("list_collections", {"CollectionIds": []}, {})
    stub.add_client_error(
        "create_collection",
        "ResourceAlreadyExistsException",
        "exists",
        expected_params={"CollectionId": "race"},
    )
    stub.activate()
    settings = Settings.from_env({}, collection_id="race")
    policy = RecognitionPolicy(settings=settings, faces=RekognitionFaceIndex(client=rekognition), repos=None)  # type: ignore[arg-type]
    policy.ensure_collection()  # does not raise
    stub.assert_no_pending_responses()


def _crop(image: bytes) -> FaceCrop:
    from datetime import UTC, datetime

    return FaceCrop(image, BoundingBox(10, 10, 60, 60), BoundingBox(20, 5, 60, 70), datetime.now(UTC), 0.9)


def test_search_crops_searches_each_crop_and_tolerates_a_faceless_one(rek: Rek) -> None:
    index, stub = rek
    images = [jpeg(200, 100), jpeg(120, 120), jpeg(90, 100)]
    params = {"CollectionId": "c", "MaxFaces": 5, "FaceMatchThreshold": 80.0, "QualityFilter": "NONE"}
    stub.add_response(
        "search_faces_by_image",
        {"FaceMatches": [{"Similarity": 99.5, "Face": {"FaceId": FACE_A, "ExternalImageId": "cus_1"}}]},
        {**params, "Image": {"Bytes": images[0]}},
    )
    stub.add_client_error(
        "search_faces_by_image", "InvalidParameterException", "There are no faces in the image."
    )
    stub.add_response(
        "search_faces_by_image",
        {"FaceMatches": [{"Similarity": 85.0, "Face": {"FaceId": FACE_A, "ExternalImageId": "cus_1"}}]},
        {**params, "Image": {"Bytes": images[2]}},
    )
    hits = index.search_crops("c", [_crop(i) for i in images], 0.42, 5)
    assert [[h.external_id for h in crop] for crop in hits] == [["cus_1"], [], ["cus_1"]]
    assert hits[0][0].similarity == pytest.approx(similarity_from_rekognition(99.5))
    assert hits[2][0].similarity == pytest.approx(similarity_from_rekognition(85.0))


def test_search_crops_raises_when_every_crop_fails_or_the_collection_is_missing(rek: Rek) -> None:
    index, stub = rek
    for _ in range(2):
        stub.add_client_error("search_faces_by_image", "InvalidParameterException", "There are no faces.")
    with pytest.raises(FaceNotFoundError):
        index.search_crops("c", [_crop(jpeg()), _crop(jpeg())], 0.42, 5)
    stub.add_client_error("search_faces_by_image", "ResourceNotFoundException", "no collection")
    with pytest.raises(NotFoundError):  # not about the crop: raised at once, the rest not searched
        index.search_crops("c", [_crop(jpeg()), _crop(jpeg())], 0.42, 5)


def test_index_crops_indexes_each_crop_under_one_owner(rek: Rek) -> None:
    index, stub = rek
    images = [jpeg(200, 100), jpeg(120, 120)]
    params = {
        "CollectionId": "c",
        "ExternalImageId": "pid_1",
        "DetectionAttributes": ["DEFAULT"],
        "MaxFaces": 1,
        "QualityFilter": "AUTO",
    }
    stub.add_response(
        "index_faces",
        {"FaceRecords": [{"Face": {"FaceId": FACE_A, "ExternalImageId": "pid_1", "Confidence": 99.0}}]},
        {**params, "Image": {"Bytes": images[0]}},
    )
    stub.add_response(
        "index_faces",
        {"FaceRecords": [], "UnindexedFaces": [{"Reasons": ["LOW_SHARPNESS"]}]},
        {**params, "Image": {"Bytes": images[1]}},
    )
    got = index.index_crops("c", [_crop(i) for i in images], "pid_1")
    assert got[0] is not None and got[0].face_id == FACE_A and got[0].external_id == "pid_1"
    assert got[1] is None
