"""The edge with ``unmatched = "anonymous"`` on real footage (the walkway clip, 9 people).

The edge embeds each track's crops itself and matches them against the consented
customers' templates read from the local store; a track that matches nobody
leaves the device only as an anonymous sighting (no crop, no template). A person
enrolled from one frame of the clip is still sent, with crops, and recognised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.bootstrap import Services, build_services
from core.consent import CONSENT_FIRST
from core.enrolment import consent_service
from core.local.gallery import SqliteConsentGallery
from core.models import CustomerDetails, FaceEvent, IngestOutcome, IngestResult
from core.schema import event_to_json
from deeplens_lambda.consent_gate import UnmatchedGate
from deeplens_lambda.publishers import InProcessPublisher
from simulator.replay import replay
from tests.conftest import make_settings
from tests.simulator.test_walkway_replay import CLIP, START, _frame, _portrait_of_largest_face


class WirePublisher:
    """Records every message exactly as it would go on the wire, then ingests it."""

    def __init__(self, svc: Services) -> None:
        self.inner = InProcessPublisher(svc.ingest, source="edge")
        self.messages: list[bytes] = []
        self.results: list[IngestResult] = []
        self.on_result: Callable[[IngestResult], None] | None = None  # the replay summary hooks in here
        self.inner.on_result = self._result
        self.rejected = 0

    def _result(self, result: IngestResult) -> None:
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def publish(self, event: FaceEvent) -> None:
        self.messages.append(event_to_json(event))
        self.inner.publish(event)
        self.rejected = self.inner.rejected

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Services]:
    svc = build_services(make_settings(tmp_path / "data", privacy_mode=CONSENT_FIRST))
    yield svc
    svc.close()


def _gate(svc: Services) -> UnmatchedGate:
    return UnmatchedGate(svc.faces, SqliteConsentGallery(svc.settings.data_dir, svc.settings.collection_id))  # type: ignore[arg-type]


def _all_files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_unenrolled_people_leave_the_edge_without_any_crop(store: Services) -> None:
    gate = _gate(store)
    wire = WirePublisher(store)
    summary = replay(CLIP, wire, camera_id="cam-entrance", zone="entrance", start_time=START, gate=gate)
    assert summary.frames == 105 and wire.rejected == 0
    docs = [json.loads(m) for m in wire.messages]
    # Nobody consented: every message is an anonymous sighting, one per track, and no
    # message holds an image (no crop, no base64 JPEG at all).
    assert docs and all(d["crops"] == [] and "sighting" in d for d in docs)
    assert not any(b"jpeg" in m or b"/9j/" in m for m in wire.messages)
    assert len({d["track_id"] for d in docs}) == len(docs)
    assert 8 <= len(docs) <= 11, len(docs)  # the nine people (the tracker makes 11 tracks at most)
    assert f"anonymous        {len(docs)}" in summary.lines()
    assert gate.stats.crops_embedded == 0  # an empty gallery needs no embedding at all
    assert {r.outcome for r in wire.results} == {IngestOutcome.ANONYMOUS}
    sightings = store.repos.anonymous.between(START.replace(hour=0), START.replace(hour=23))
    assert len(sightings) == len(docs)
    assert all(s.dwell_seconds > 0 for s in sightings), [s.dwell_seconds for s in sightings]
    assert sum(s.dwell_seconds for s in sightings) / len(sightings) < 4.3  # the clip is 4.2 s
    assert store.repos.customers.count() == 0 and store.blobs.list() == []
    assert store.approvals.list_pending() == []


def test_a_customer_enrolled_from_one_frame_is_still_sent_and_recognised(store: Services) -> None:
    consent = consent_service(store)
    boy = consent.enrol(
        CustomerDetails("Walkway Boy", consent=True),
        _portrait_of_largest_face(_frame(80)),
        channel="staff",
        notice_version=consent.notice().version,
        assisted_by="ann",
    )
    photos_before = set(store.blobs.list())
    gate = _gate(store)
    wire = WirePublisher(store)
    replay(CLIP, wire, camera_id="cam-entrance", zone="entrance", start_time=START, gate=gate)
    assert wire.rejected == 0
    with_crops = [json.loads(m) for m in wire.messages if json.loads(m)["crops"]]
    anonymous = [json.loads(m) for m in wire.messages if not json.loads(m)["crops"]]
    # Only his track sends crops, and the backend recognises him from them.
    assert with_crops and len({d["track_id"] for d in with_crops}) == 1, [d["track_id"] for d in with_crops]
    visits = [r.customer_id for r in wire.results if r.outcome == IngestOutcome.VISIT]
    assert visits and set(visits) == {boy.customer_id}
    assert store.repos.visits.by_customer(boy.customer_id)
    # Everybody else is an anonymous sighting, and his track is not one of them.
    assert 7 <= len(anonymous) <= 10
    assert with_crops[0]["track_id"] not in {d["track_id"] for d in anonymous}
    assert gate.stats.matched_tracks == 1
    # The only photos stored are his.
    stored = set(store.blobs.list()) - photos_before
    assert stored and stored <= {f.crop_key for f in store.repos.faces.by_customer(boy.customer_id)}


def test_the_local_gallery_holds_only_consented_customers_and_forgets_them(store: Services) -> None:
    from tests.privacy.conftest import enrol

    gallery = SqliteConsentGallery(store.settings.data_dir, store.settings.collection_id)
    assert len(gallery.templates()) == 0
    barack = enrol(store, "Barack", "obama")
    grace = enrol(store, "Grace", "grace_hopper")
    templates = gallery.templates()
    assert sorted(templates.customer_ids) == sorted([barack.customer_id, grace.customer_id])
    assert templates.vectors.shape == (2, 128)
    # The very templates the backend searches.
    by_id = {f.face_id: f for f in store.faces.list_faces(store.settings.collection_id)}
    assert set(templates.face_ids) == set(by_id)
    # A customer without consent (review mode lets staff record one) is not in it.
    store.repos.customers.update(replace(store.repos.customers.get(grace.customer_id), consent=False))
    assert gallery.templates().customer_ids == (barack.customer_id,)
    # Erasure and retirement take people out at the next read.
    store.privacy.erase(barack.customer_id)
    assert len(gallery.templates()) == 0
    store.repos.customers.update(replace(store.repos.customers.get(grace.customer_id), consent=True))
    assert gallery.templates().customer_ids == (grace.customer_id,)
    store.privacy.forget_biometrics(grace.customer_id)
    assert len(gallery.templates()) == 0


def test_the_gate_keeps_its_last_gallery_when_a_read_fails(store: Services, tmp_path: Path) -> None:
    from core.gallery import BlobGallery
    from core.local.blobs import FileBlobStore
    from core.models import BoundingBox, FaceCrop
    from tests.privacy.conftest import enrol
    from tests.support.photos import photo_bytes

    barack = enrol(store, "Barack", "obama")
    blobs = FileBlobStore(tmp_path / "edge-blobs")
    shared = BlobGallery(blobs)
    shared.write(SqliteConsentGallery(store.settings.data_dir, store.settings.collection_id).templates())
    now = [0.0]
    gate = UnmatchedGate(store.faces, shared, refresh_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    crop = [FaceCrop(photo_bytes("obama2"), BoundingBox(0, 0, 10, 10), None, START, 0.9)]
    assert gate.match(crop, "yunet") == barack.customer_id
    blobs.put(shared.key, b"{not a gallery", content_type="application/json")
    now[0] = 61.0  # due for a re-read, which fails: the last good gallery stays in use
    assert gate.match(crop, "yunet") == barack.customer_id
    shared.write(SqliteConsentGallery(store.settings.data_dir, store.settings.collection_id).templates())
    store.privacy.erase(barack.customer_id)
    shared.write(SqliteConsentGallery(store.settings.data_dir, store.settings.collection_id).templates())
    now[0] = 122.0
    assert gate.match(crop, "yunet") is None
