"""Data-subject rights (find by selfie, export, withdrawal) and customer retention."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest

from core.bootstrap import Services
from core.enrolment import consent_service
from core.errors import TokenError
from core.models import IngestOutcome, Transaction, new_id, utcnow
from tests.privacy.conftest import enrol
from tests.support.events import make_event
from tests.support.photos import photo_bytes


def _seed_two(svc: Services) -> tuple[str, str]:
    barack = enrol(svc, "Barack Obama", "obama", email="barack@example.com", loyalty_id="L-1")
    joe = enrol(svc, "Joe Biden", "biden", email="joe@example.com", loyalty_id="L-2")
    now = utcnow()
    assert (
        svc.ingest.ingest(make_event(photo_bytes("obama2"), captured_at=now)).customer_id
        == barack.customer_id
    )
    assert svc.ingest.ingest(make_event(photo_bytes("biden"), captured_at=now)).customer_id == joe.customer_id
    for cid, loyalty, cents in ((barack.customer_id, "L-1", 1999), (joe.customer_id, "L-2", 4200)):
        svc.repos.transactions.add(
            Transaction(new_id("txn"), "store-1", now, cents, loyalty_id=loyalty, customer_id=cid)
        )
    return barack.customer_id, joe.customer_id


def test_find_by_selfie_is_audited(consent_first: Services) -> None:
    barack, _joe = _seed_two(consent_first)
    consent = consent_service(consent_first)
    (found,) = consent.find_by_selfie(photo_bytes("obama3"), actor="dashboard:dpo")
    assert found.customer_id == barack and found.name == "Barack Obama"
    (entry,) = [a for a in consent_first.repos.audit.list() if a.action == "dsar_search"]
    assert (entry.actor, entry.subject_id, entry.details) == ("dashboard:dpo", barack, {"matches": [barack]})


def test_export_holds_everything_about_one_person_and_nothing_else(consent_first: Services) -> None:
    barack, joe = _seed_two(consent_first)
    consent = consent_service(consent_first)
    data = consent.export(barack, actor="dashboard:dpo")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        files = {n: zf.read(n) for n in names}
    customer = json.loads(files["customer.json"])
    assert (customer["customer_id"], customer["name"], customer["loyalty_id"]) == (
        barack,
        "Barack Obama",
        "L-1",
    )
    (record,) = json.loads(files["consent.json"])
    assert record["channel"] == "kiosk" and record["notice_version"] == consent.notice().version
    assert [v["customer_id"] for v in json.loads(files["visits.json"])] == [barack]
    assert [t["amount_cents"] for t in json.loads(files["sales.json"])] == [1999]
    faces = consent_first.repos.faces.by_customer(barack)
    photos = {n for n in names if n.startswith("photos/")}
    assert photos == {f"photos/{f.face_id}.jpg" for f in faces} and len(photos) == 2  # enrolment + visit
    assert all(files[f"photos/{f.face_id}.jpg"] == consent_first.blobs.get(f.crop_key) for f in faces)
    everything = b"".join(files.values())
    # Look for the other person's words in the text files only: short needles can
    # turn up by chance inside JPEG bytes (the photos are compared whole below).
    text = b"".join(data for name, data in files.items() if not name.startswith("photos/"))
    joe_faces = consent_first.repos.faces.by_customer(joe)
    for needle in (joe.encode(), b"Joe Biden", b"joe@example.com", b"L-2", b": 4200"):
        assert needle not in text, needle
    assert all(consent_first.blobs.get(f.crop_key) not in everything for f in joe_faces)
    assert any(a.action == "export" and a.subject_id == barack for a in consent_first.repos.audit.list())


def test_withdrawal_link_erases_and_works_once(consent_first: Services) -> None:
    barack, joe = _seed_two(consent_first)
    consent = consent_service(consent_first)
    token = consent.withdrawal_link(barack).split("withdraw=", 1)[1]
    report = consent.withdraw(token)
    assert report.customer_id == barack and report.faces == 2 and report.transactions_unlinked == 1
    assert [c.customer_id for c in consent_first.repos.customers.list()] == [joe]
    with pytest.raises(TokenError):
        consent.withdraw(token)
    # The erased person is a stranger again, and in consent-first mode leaves nothing.
    again = consent_first.ingest.ingest(make_event(photo_bytes("obama2")))
    assert again.outcome is IngestOutcome.ANONYMOUS
    # The consent record stays in the audit log, naming only the opaque id.
    (record,) = consent.consent_records(barack)
    assert record.customer_id == barack


def test_retention_deletes_photos_and_templates_after_the_last_visit(consent_first: Services) -> None:
    from dataclasses import replace

    svc = consent_first
    days = svc.settings.customer_retention_days
    now = utcnow()
    long_ago = now - timedelta(days=days + 10)
    gone = enrol(svc, "Barack Obama", "obama").customer_id
    # Barack enrolled long ago and was last seen 5 days past the retention period.
    customer = svc.repos.customers.get(gone)
    svc.repos.customers.update(replace(customer, consent_at=long_ago, created_at=long_ago))
    for face in svc.repos.faces.by_customer(gone):
        face.captured_at = long_ago
        svc.repos.faces.update(face)
    last_visit = now - timedelta(days=days + 5)
    visit = svc.ingest.ingest(make_event(photo_bytes("obama2"), captured_at=last_visit))
    assert visit.customer_id == gone
    kept = enrol(svc, "Joe Biden", "biden").customer_id
    crops = [f.crop_key for f in svc.repos.faces.by_customer(gone)]
    assert len(crops) == 2

    early = svc.privacy.purge(now=now - timedelta(days=10))
    assert early.retired == []
    report = svc.privacy.purge(now=now)
    assert report.retired == [gone]
    assert svc.repos.faces.by_customer(gone) == [] and not any(svc.blobs.exists(k) for k in crops)
    index = svc.faces.list_faces(svc.settings.collection_id)
    assert gone not in {f.external_id for f in index} and kept in {f.external_id for f in index}
    assert svc.repos.customers.get(gone).name == "Barack Obama"  # the record stays, not the biometrics
    assert len(svc.repos.visits.by_customer(gone)) == 1
    assert svc.repos.faces.count_templates(kept) == 1
    assert any(a.action == "forget_biometrics" for a in svc.repos.audit.list(gone))
    # Seen again, Barack is no longer recognised.
    assert svc.ingest.ingest(make_event(photo_bytes("obama2"))).outcome is IngestOutcome.ANONYMOUS
