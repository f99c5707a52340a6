"""The spine end to end on the embedded backend: real photos, real models, real SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.bootstrap import Services, build_services
from core.errors import EventSchemaError, FaceNotFoundError, ImageDecodeError, PayloadTooLargeError
from core.models import Band, CustomerDetails, FaceStatus, IngestOutcome, PendingKind, PendingStatus
from core.ports import Decision
from core.schema import event_to_dict, event_to_json
from tests.conftest import make_settings
from tests.support.events import make_crop, make_event, make_track_event
from tests.support.photos import photo_bytes

APPROVE = Decision(
    "approve", "tester", CustomerDetails("Barack Obama", "barack@example.com", "L-44", consent=True)
)


def _obama_events(n: int = 3) -> list:
    names = ["obama", "obama2", "obama3"]
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    return [make_event(photo_bytes(names[i % 3]), captured_at=t0 + timedelta(minutes=i)) for i in range(n)]


def test_same_event_twice_is_ingested_once(services: Services) -> None:
    event = make_event(photo_bytes("obama"))
    first = services.ingest.ingest(event_to_json(event))
    second = services.ingest.ingest(event_to_json(event))
    assert first.outcome is IngestOutcome.PENDING
    assert second.outcome is IngestOutcome.DUPLICATE
    counts = services.repos.table_counts()
    assert counts["events"] == 1 and counts["faces"] == 1 and counts["pending_identities"] == 1
    assert len(services.faces.list_faces(services.settings.collection_id)) == 1


def test_repeated_unknown_person_becomes_one_pending_identity(services: Services) -> None:
    results = [services.ingest.ingest(e) for e in _obama_events(6)]
    pending_ids = {r.pending_id for r in results}
    assert len(pending_ids) == 1
    (pending,) = services.approvals.list_pending()
    assert pending.face_count == 6 and pending.kind is PendingKind.NEW
    assert len(services.approvals.faces_of(pending.pending_id)) == 6
    # One approval e-mail, not one per sighting.
    assert len(services.notifier.messages()) == 1

    biden = services.ingest.ingest(make_event(photo_bytes("biden")))
    assert biden.outcome is IngestOutcome.PENDING and biden.pending_id not in pending_ids
    assert len(services.approvals.list_pending()) == 2


def test_approve_makes_a_customer_and_later_sightings_are_visits(services: Services) -> None:
    results = [services.ingest.ingest(e) for e in _obama_events(3)]
    pending_id = results[0].pending_id
    # Unapproved crops live under pending/ (the S3 lifecycle rule expires that prefix).
    assert all(k.startswith("pending/") for k in services.blobs.list())
    services.approvals.decide(pending_id, APPROVE)
    # Approval moves them under crops/, and the Live feed follows.
    keys = services.blobs.list()
    assert len(keys) == 3 and all(k.startswith("crops/") for k in keys)
    assert {e.crop_key for e in services.repos.events.recent()} == set(keys)
    assert all(services.blobs.exists(f.crop_key) for f in services.repos.faces.by_status(FaceStatus.CUSTOMER))

    pending = services.approvals.get(pending_id)
    assert pending.status is PendingStatus.APPROVED
    customer = services.customers.get(pending.customer_id)
    assert customer.name == "Barack Obama" and customer.consent and customer.consent_at is not None
    # Indexed under the opaque id, never the name.
    externals = {f.external_id for f in services.faces.list_faces(services.settings.collection_id)}
    assert externals == {customer.customer_id}
    # The three sightings within minutes of each other are one visit.
    visits = services.repos.visits.by_customer(customer.customer_id)
    assert len(visits) == 1 and visits[0].dwell_seconds == 120

    later = make_event(photo_bytes("obama2"), captured_at=datetime(2026, 11, 9, 15, 0, tzinfo=UTC))
    result = services.ingest.ingest(later)
    assert result.outcome is IngestOutcome.VISIT and result.customer_id == customer.customer_id
    assert result.similarity is not None and result.similarity >= services.settings.match_threshold
    assert len(services.repos.visits.by_customer(customer.customer_id)) == 2
    assert services.repos.audit.list(customer.customer_id)[0].action == "approve"


def test_reject_removes_faces_from_index_and_disk(services: Services) -> None:
    result = services.ingest.ingest(make_event(photo_bytes("biden")))
    crop_keys = [f.crop_key for f in services.approvals.faces_of(result.pending_id)]
    assert all(services.blobs.exists(k) for k in crop_keys)
    services.approvals.decide(result.pending_id, Decision("reject", "tester"))
    assert services.approvals.get(result.pending_id).status is PendingStatus.REJECTED
    assert services.faces.list_faces(services.settings.collection_id) == []
    assert not any(services.blobs.exists(k) for k in crop_keys)
    assert services.repos.table_counts()["faces"] == 0
    assert services.notifier.messages() == []
    # Seen again, the person is simply new again.
    again = services.ingest.ingest(make_event(photo_bytes("biden")))
    assert again.outcome is IngestOutcome.PENDING and again.pending_id != result.pending_id


def test_not_a_customer_suppresses_later_sightings(services: Services) -> None:
    first = services.ingest.ingest(make_event(photo_bytes("obama")))
    services.approvals.decide(first.pending_id, Decision("not_a_customer", "tester"))
    assert services.approvals.get(first.pending_id).status is PendingStatus.NOT_A_CUSTOMER
    assert [f.status for f in services.repos.faces.by_status(FaceStatus.SUPPRESSED)] == [
        FaceStatus.SUPPRESSED
    ]
    blobs_before = services.blobs.list()

    later = services.ingest.ingest(make_event(photo_bytes("obama2")))
    assert later.outcome is IngestOutcome.SUPPRESSED
    assert services.blobs.list() == blobs_before  # no crop of them is written
    assert services.approvals.list_pending() == []
    # Someone else is still tracked.
    assert services.ingest.ingest(make_event(photo_bytes("biden"))).outcome is IngestOutcome.PENDING


def test_review_band_confirm_and_not_this_person(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A strict match threshold puts a different photo of an enrolled person in
    # the review band: a human must confirm.
    svc = build_services(make_settings(tmp_path / "d", match_threshold=0.95, review_threshold=0.45))
    customer = svc.customers.enroll("Barack Obama", [photo_bytes("obama")], actor="t")
    r1 = svc.ingest.ingest(make_event(photo_bytes("obama2")))
    assert r1.outcome is IngestOutcome.REVIEW and r1.customer_id == customer.customer_id
    pending = svc.approvals.get(r1.pending_id)
    assert pending.kind is PendingKind.REVIEW and pending.suggested_customer_id == customer.customer_id
    svc.approvals.decide(r1.pending_id, Decision("confirm", "tester"))
    assert svc.approvals.get(r1.pending_id).status is PendingStatus.MERGED
    assert len(svc.repos.faces.by_customer(customer.customer_id)) == 2
    assert len(svc.repos.visits.by_customer(customer.customer_id)) == 1

    svc2 = build_services(make_settings(tmp_path / "e", match_threshold=0.95, review_threshold=0.45))
    svc2.customers.enroll("Barack Obama", [photo_bytes("obama")], actor="t")
    r2 = svc2.ingest.ingest(make_event(photo_bytes("obama3")))
    assert r2.outcome is IngestOutcome.REVIEW
    svc2.approvals.decide(r2.pending_id, Decision("not_this_person", "tester"))
    pending = svc2.approvals.get(r2.pending_id)
    assert pending.status is PendingStatus.PENDING and pending.kind is PendingKind.NEW
    assert pending.suggested_customer_id is None
    assert len(svc2.notifier.messages()) == 2  # a fresh mail with the new-person actions


def test_restart_keeps_everything(settings) -> None:  # type: ignore[no-untyped-def]
    svc = build_services(settings)
    results = [svc.ingest.ingest(e) for e in _obama_events(2)]
    svc.approvals.decide(results[0].pending_id, APPROVE)
    svc.ingest.ingest(make_event(photo_bytes("biden")))
    svc.close()

    again = build_services(settings)
    (customer,) = again.customers.list()
    assert customer.name == "Barack Obama"
    assert len(again.approvals.list_pending()) == 1
    found = again.customers.identify(photo_bytes("obama3"))
    assert [f.customer_id for f in found] == [customer.customer_id]
    assert again.ingest.ingest(make_event(photo_bytes("obama2"))).outcome is IngestOutcome.VISIT


def test_bad_inputs_get_typed_errors_and_dead_letters(services: Services) -> None:
    good = event_to_dict(make_event(photo_bytes("obama")))
    cases = [
        (b"{not json", EventSchemaError),
        (json.dumps({**good, "schema_version": 9}).encode(), EventSchemaError),
        (json.dumps({**good, "crop_jpeg_b64": good["crop_jpeg_b64"][:400]}).encode(), ImageDecodeError),
    ]
    for payload, error in cases:
        with pytest.raises(error):
            services.ingest.ingest(payload, source="test")
    small = build_services(make_settings(services.settings.data_dir.parent / "small", max_crop_bytes=2000))
    with pytest.raises(PayloadTooLargeError):
        small.ingest.ingest(json.dumps(good).encode(), source="test")

    letters = services.ingest.dead_letters()
    assert [d.error_type for d in reversed(letters)] == [
        "EventSchemaError",
        "EventSchemaError",
        "ImageDecodeError",
    ]
    assert all(d.reason and d.source == "test" for d in letters)
    assert services.repos.table_counts()["events"] == 0
    assert services.blobs.list() == []


def test_crop_without_a_face_is_dead_lettered(services: Services) -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 160), (90, 120, 200)).save(out, format="JPEG")
    event = make_event(photo_bytes("obama"))
    doc = event_to_dict(event)
    import base64

    doc["crop_jpeg_b64"] = base64.b64encode(out.getvalue()).decode()
    with pytest.raises(FaceNotFoundError):
        services.ingest.ingest(doc, source="test")
    (letter,) = services.ingest.dead_letters()
    assert letter.error_type == "FaceNotFoundError" and letter.event_id == event.event_id
    assert services.repos.table_counts()["events"] == 0


def _with_dims(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOF header declaring another size (nothing else changed)."""
    at = jpeg.index(b"\xff\xc0") + 5
    return jpeg[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 4 :]


def _scrambled(jpeg: bytes, seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    start = len(jpeg) // 2
    return jpeg[:start] + bytes(rng.randrange(256) for _ in range(400)) + jpeg[start + 400 :]


def test_hostile_inputs_are_refused_one_by_one_and_the_batch_goes_on(services: Services) -> None:
    import base64
    from dataclasses import replace

    from core.errors import ValidationError

    event = make_event(photo_bytes("obama"))
    good = event_to_dict(event)

    def with_crop(jpeg: bytes) -> bytes:
        return json.dumps({**good, "crop_jpeg_b64": base64.b64encode(jpeg).decode()}).encode()

    text = json.dumps(good)
    cases: list[tuple[object, type[ValidationError], str]] = [
        (json.dumps({**good, "captured_at": "0001-01-01T00:00:00Z"}), EventSchemaError, "outside 2000-01-01"),
        (json.dumps({**good, "captured_at": "9999-12-31T23:59:59Z"}), EventSchemaError, "outside 2000-01-01"),
        (json.dumps({**good, "captured_at": "0001-01-01T00:00:00+05:00"}), EventSchemaError, "out of range"),
        (with_crop(_with_dims(event.crop_jpeg, 20000, 20000)), PayloadTooLargeError, "20000x20000"),
        (with_crop(_with_dims(event.crop_jpeg, 9000, 9000)), PayloadTooLargeError, "9000x9000"),
        (with_crop(_scrambled(event.crop_jpeg, 1)), ImageDecodeError, "corrupt"),
        (with_crop(_scrambled(event.crop_jpeg, 2)), ImageDecodeError, "corrupt"),
        (text.replace('"confidence":', '"confidence": 1' + "0" * 5000 + ', "x":', 1), EventSchemaError, ""),
        ('{"event_id": ' + "[" * 50_000 + "]" * 50_000 + "}", EventSchemaError, "nested too deeply"),
        ("[1, 2, 3]", EventSchemaError, "JSON object"),
        (42, EventSchemaError, "not int"),
        (None, EventSchemaError, "not NoneType"),
        ({**good, "confidence": 10**5000}, EventSchemaError, ""),
        ({**good, "frame": {"width": 10**5000, "height": 10}}, EventSchemaError, "frame"),
        (replace(event, crop_jpeg="not bytes"), EventSchemaError, "wrong type"),  # type: ignore[arg-type]
        (replace(event, crop_jpeg=None), EventSchemaError, "wrong type"),  # type: ignore[arg-type]
        (event, None, ""),  # and the good one after all of them still goes through
    ]
    for payload, error, words in cases:
        if error is None:
            assert services.ingest.ingest(payload, source="batch").outcome is IngestOutcome.PENDING  # type: ignore[arg-type]
            continue
        with pytest.raises(error) as caught:
            services.ingest.ingest(payload, source="batch")  # type: ignore[arg-type]
        assert words in str(caught.value), (words, str(caught.value))
    letters = services.ingest.dead_letters(limit=100)
    assert len(letters) == len(cases) - 1
    assert all(d.reason and d.source == "batch" for d in letters)
    counts = services.repos.table_counts()
    assert counts["events"] == counts["faces"] == 1


# ------------------------------------------------ v2: several crops, one track


def _blur(radius: float):  # type: ignore[no-untyped-def]
    from PIL import ImageFilter

    return lambda im: im.filter(ImageFilter.GaussianBlur(radius))


def _pixelate(factor: int):  # type: ignore[no-untyped-def]
    from PIL import Image

    def degrade(im):  # type: ignore[no-untyped-def]
        w, h = im.size
        return im.resize((max(1, w // factor), max(1, h // factor)), Image.BILINEAR).resize(
            (w, h), Image.BILINEAR
        )

    return degrade


T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _crops(*specs: tuple[str, object, float], start: datetime = T0) -> list:
    """``(photo, degrade or None, quality)`` -> make_crop results, one second apart."""
    return [
        make_crop(
            photo_bytes(name), degrade=degrade, quality=quality, captured_at=start + timedelta(seconds=i)
        )
        for i, (name, degrade, quality) in enumerate(specs)
    ]


def test_several_crops_of_an_enrolled_customer_make_a_visit_where_a_poor_crop_alone_is_review(
    services: Services,
) -> None:
    customer = services.customers.enroll("Barack Obama", [photo_bytes("obama")], actor="t")
    crops = _crops(("obama2", _blur(8), 0.9), ("obama2", None, 0.8), ("obama3", None, 0.7))
    policy = services.ingest.recognition
    # One blurred frame on its own is only a "possible" match: a human would have to review it.
    poor = policy.recognise_crops([crops[0][0]])
    assert poor.band is Band.REVIEW and poor.customer_id == customer.customer_id

    result = services.ingest.ingest(make_track_event(crops))
    assert result.outcome is IngestOutcome.VISIT and result.customer_id == customer.customer_id
    assert result.similarity is not None and result.similarity >= services.settings.match_threshold
    assert services.approvals.list_pending() == []
    # Every crop is kept as a face of the customer and indexed as a template (under the cap).
    faces = [f for f in services.repos.faces.by_customer(customer.customer_id) if f.event_id]
    assert len(faces) == 3 and all(f.index_face_id for f in faces)
    assert sorted(f.crop_key for f in faces) == sorted(
        f"crops/2026/11/02/{result.event_id}{s}.jpg" for s in ("", "-1", "-2")
    )
    assert all(services.blobs.exists(f.crop_key) for f in faces)
    # The visit spans the crops' times.
    (visit,) = services.repos.visits.by_customer(customer.customer_id)
    assert visit.dwell_seconds == 2
    (seen,) = services.repos.events.recent()
    assert seen.crop_key == f"crops/2026/11/02/{result.event_id}.jpg"


def test_one_lucky_crop_does_not_name_anyone(services: Services) -> None:
    customer = services.customers.enroll("Barack Obama", [photo_bytes("obama")], actor="t")
    # Four crops of Biden and one of Obama in one "track": the odd one out is trimmed.
    crops = _crops(
        ("obama2", None, 1.0),
        ("biden", None, 0.9),
        ("biden", _blur(2), 0.8),
        ("biden", _pixelate(4), 0.7),
        ("biden", _blur(3), 0.6),
    )
    # Alone, the lucky crop would be a confident match.
    assert services.ingest.recognition.recognise_crops([crops[0][0]]).band is Band.MATCH
    result = services.ingest.ingest(make_track_event(crops))
    assert result.outcome is IngestOutcome.PENDING and result.customer_id is None
    assert services.repos.visits.by_customer(customer.customer_id) == []


def test_events_of_one_track_make_one_pending_identity(services: Services) -> None:
    first = services.ingest.ingest(
        make_track_event(_crops(("biden", None, 0.9), ("biden", _blur(2), 0.6)), track_id="cam-entrance-r1-4")
    )
    assert first.outcome is IngestOutcome.PENDING
    # Later crops of the track are so poor that on their own they would open a second identity ...
    later = _crops(
        ("biden", _pixelate(16), 0.3), ("biden", _pixelate(14), 0.2), start=T0 + timedelta(seconds=20)
    )
    alone = services.ingest.recognition.recognise_crops([c for c, _w, _h in later])
    assert alone.pending_id is None
    # ... but the track has already decided who this is.
    second = services.ingest.ingest(make_track_event(later, track_id="cam-entrance-r1-4"))
    assert second.outcome is IngestOutcome.PENDING and second.pending_id == first.pending_id
    (pending,) = services.approvals.list_pending()
    assert pending.face_count == 4 and pending.last_seen_at == T0 + timedelta(seconds=21)
    faces = services.approvals.faces_of(pending.pending_id)
    assert len({f.crop_key for f in faces}) == 4 and all(services.blobs.exists(f.crop_key) for f in faces)
    assert len(services.notifier.messages()) == 1
    # Another camera's track with the same id is someone else's track.
    other = services.ingest.ingest(
        make_track_event(
            _crops(("grace_hopper", None, 0.9)), camera_id="cam-aisle", track_id="cam-entrance-r1-4"
        )
    )
    assert other.pending_id != first.pending_id


def test_concurrent_events_of_one_new_track_make_one_pending_identity(services: Services) -> None:
    from concurrent.futures import ThreadPoolExecutor

    events = [
        make_track_event(_crops((name, None, 0.8), start=T0 + timedelta(seconds=i)), track_id="t-same")
        for i, name in enumerate(["biden", "biden", "obama", "grace_hopper"])
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(services.ingest.ingest, events))
    assert len({r.pending_id for r in results}) == 1
    assert len(services.approvals.list_pending()) == 1


def test_a_track_that_was_approved_or_matched_keeps_making_visits(services: Services) -> None:
    first = services.ingest.ingest(make_track_event(_crops(("obama", None, 0.9)), track_id="t-walk"))
    services.approvals.decide(first.pending_id, APPROVE)
    customer_id = services.approvals.get(first.pending_id).customer_id
    assert customer_id
    # The same track, still in view after the approval: a visit of the new customer,
    # even from a crop that alone would only be a review.
    later = make_track_event(
        _crops(("obama2", _blur(8), 0.5), start=T0 + timedelta(seconds=30)), track_id="t-walk"
    )
    assert services.ingest.recognition.recognise_crops(later.all_crops).band is Band.REVIEW
    result = services.ingest.ingest(later)
    assert result.outcome is IngestOutcome.VISIT and result.customer_id == customer_id
    (visit,) = services.repos.visits.by_customer(customer_id)
    assert visit.last_seen_at == T0 + timedelta(seconds=30)

    # Long after (beyond the visit gap) the same track id is decided afresh.
    much_later = T0 + timedelta(seconds=services.settings.visit_gap_seconds + 120)
    again = services.ingest.ingest(
        make_track_event(_crops(("biden", None, 0.9), start=much_later), track_id="t-walk")
    )
    assert again.outcome is IngestOutcome.PENDING and again.customer_id is None


def test_one_confident_crop_of_a_do_not_track_person_suppresses_the_event(services: Services) -> None:
    first = services.ingest.ingest(make_event(photo_bytes("obama")))
    services.approvals.decide(first.pending_id, Decision("not_a_customer", "tester"))
    blobs_before = services.blobs.list()
    # Privacy errs towards not tracking: one clear crop of the opted-out person is enough.
    crops = _crops(("biden", None, 0.9), ("obama2", None, 0.8), ("biden", _blur(2), 0.7))
    result = services.ingest.ingest(make_track_event(crops))
    assert result.outcome is IngestOutcome.SUPPRESSED
    assert services.blobs.list() == blobs_before
