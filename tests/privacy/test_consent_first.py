"""Consent-first mode: an unknown face leaves nothing behind; consented customers get visits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.bootstrap import Services, build_services
from core.consent import CONSENT_FIRST, footfall
from core.errors import SettingsError
from core.models import FaceCrop, FaceEvent, FaceStatus, IngestOutcome
from core.settings import Settings
from tests.conftest import make_settings
from tests.privacy.conftest import enrol
from tests.support.events import make_event
from tests.support.photos import photo_bytes


def _files_containing(root: Path, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """(needle name, file) for every file under ``root`` that holds a needle's bytes."""
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits += [(name, str(path)) for name, needle in needles.items() if needle in data]
    return hits


def _traces_of(svc: Services, event: FaceEvent) -> dict[str, bytes]:
    """The crop as sent, and the face's embedding as the index would store it (float32)."""
    embed = svc.faces.embed_image  # type: ignore[attr-defined]
    vector = np.asarray(embed(event.crop_jpeg), dtype="<f4")
    return {"crop": event.crop_jpeg, "embedding": vector.tobytes(), "embedding head": vector[:16].tobytes()}


def test_privacy_mode_is_review_by_default_and_typos_are_refused() -> None:
    assert Settings.from_env({}).privacy_mode == "review"
    assert Settings.from_env({"STORELENS_PRIVACY_MODE": "consent-first"}).privacy_mode == CONSENT_FIRST
    with pytest.raises(SettingsError, match="review, consent-first"):
        Settings.from_env({"STORELENS_PRIVACY_MODE": "consent_first"})


def test_the_scan_finds_an_unknown_face_in_review_mode(services: Services) -> None:
    """The control: the same scan does find crop and embedding when review mode keeps them."""
    event = make_event(photo_bytes("biden"))
    assert services.ingest.ingest(event).outcome is IngestOutcome.PENDING
    hits = {name for name, _ in _files_containing(services.settings.data_dir, _traces_of(services, event))}
    assert hits == {"crop", "embedding", "embedding head"}


def test_unknown_face_leaves_nothing_behind(consent_first: Services) -> None:
    svc = consent_first
    ada = enrol(svc, "Barack", "obama")
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    image = photo_bytes("biden")
    first = make_event(image, captured_at=t0, zone="shoes")
    in_crop = svc.faces.detect_faces(first.crop_jpeg)[0].bbox
    crops = tuple(
        FaceCrop(first.crop_jpeg, first.bbox, in_crop, t0 + timedelta(seconds=s), 0.9) for s in (0, 4, 9)
    )
    event = FaceEvent.from_crops(
        event_id=first.event_id,
        store_id="store-1",
        camera_id="cam-shoes",
        zone="shoes",
        frame_width=first.frame_width,
        frame_height=first.frame_height,
        detector="yunet",
        track_id="t-7",
        crops=crops,
    )
    result = svc.ingest.ingest(event)
    assert result.outcome is IngestOutcome.ANONYMOUS
    assert result.pending_id is None and result.customer_id is None and result.face_id is None
    # A redelivery stays a duplicate, and adds no second sighting.
    assert svc.ingest.ingest(event).outcome is IngestOutcome.DUPLICATE

    assert svc.repos.pending.list(None) == []
    faces = svc.repos.faces.by_status(FaceStatus.PENDING) + svc.repos.faces.by_status(FaceStatus.SUPPRESSED)
    assert faces == []
    index = svc.faces.list_faces(svc.settings.collection_id)
    assert {f.external_id for f in index} == {ada.customer_id}
    assert svc.blobs.list("pending/") == [] and svc.blobs.list("crops/") == []
    assert svc.notifier.messages() == []  # type: ignore[attr-defined]
    # Every file under the data dir (db, WAL, vector logs, blobs, outbox): no crop, no embedding.
    assert _files_containing(svc.settings.data_dir, _traces_of(svc, event)) == []

    (sighting,) = svc.repos.anonymous.between(t0 - timedelta(hours=1), t0 + timedelta(hours=1))
    assert (sighting.camera_id, sighting.zone, sighting.dwell_seconds) == ("cam-shoes", "shoes", 9.0)
    counted = footfall(svc.repos, t0 - timedelta(hours=1), t0 + timedelta(hours=1))
    assert (counted.visits, counted.anonymous, counted.by_zone) == (0, 1, {"shoes": 1})


def test_consented_customer_is_recognised_and_gets_a_visit(consent_first: Services) -> None:
    svc = consent_first
    barack = enrol(svc, "Barack", "obama")
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    result = svc.ingest.ingest(make_event(photo_bytes("obama2"), captured_at=t0))
    assert result.outcome is IngestOutcome.VISIT and result.customer_id == barack.customer_id
    (visit,) = svc.repos.visits.by_customer(barack.customer_id)
    assert visit.started_at == t0
    svc.ingest.ingest(make_event(photo_bytes("biden"), captured_at=t0 + timedelta(minutes=1)))
    counted = footfall(svc.repos, t0, t0 + timedelta(hours=1))
    assert (counted.visits, counted.anonymous, counted.total) == (1, 1, 2)


def test_review_band_face_is_not_stored_either(tmp_path: Path) -> None:
    # Thresholds that put a second photo of an enrolled person in the review band.
    settings = make_settings(
        tmp_path / "data", privacy_mode=CONSENT_FIRST, match_threshold=0.99, review_threshold=0.3
    )
    svc = build_services(settings)
    try:
        enrol(svc, "Barack", "obama")
        event = make_event(photo_bytes("obama2"))
        assert svc.recognition.recognise(event.crop_jpeg).band.value == "review"
        assert svc.ingest.ingest(event).outcome is IngestOutcome.ANONYMOUS
        assert svc.repos.pending.list(None) == []
        assert _files_containing(settings.data_dir, _traces_of(svc, event)) == []
    finally:
        svc.close()


def test_a_bad_event_keeps_no_face_in_the_dead_letters(consent_first: Services) -> None:
    from core.errors import ValidationError

    grey = make_event(photo_bytes("biden"))
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (160, 160), (120, 110, 100)).save(buf, format="JPEG")
    faceless = FaceEvent(
        **{**{f: getattr(grey, f) for f in grey.__dataclass_fields__}, "crop_jpeg": buf.getvalue()}
    )
    with pytest.raises(ValidationError):
        consent_first.ingest.ingest(faceless)
    (letter,) = consent_first.ingest.dead_letters()
    assert letter.payload == b"" and letter.reason


def test_plain_enrolment_is_refused_in_consent_first_mode(consent_first: Services) -> None:
    """The CLI's and the Customers page's enrolment record no consent first: refused, nothing stored."""
    from core.errors import ValidationError

    with pytest.raises(ValidationError, match="consent-first mode: enrol through the kiosk"):
        consent_first.customers.enroll("Barack Obama", [photo_bytes("obama")])
    assert consent_first.repos.customers.count() == 0
    assert not list((consent_first.settings.data_dir / "blobs").rglob("*.jpg"))
