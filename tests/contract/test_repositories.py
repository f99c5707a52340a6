"""Repositories contract: SqliteRepositories and DynamoDbRepositories behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConflictError, NotFoundError
from core.models import (
    AuditEntry,
    BoundingBox,
    Customer,
    DeadLetter,
    Face,
    FaceEvent,
    FaceStatus,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    TrackLink,
    Transaction,
    Visit,
    new_id,
)
from tests.aws.moto_support import client, moto, unique

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["local", "aws"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "local":
        from core.local.sqlite import SqliteRepositories

        r = SqliteRepositories(tmp_path / "storelens.db")
        yield r
        r.close()
        return
    from core.aws.dynamodb import DynamoDbRepositories

    with moto():
        r = DynamoDbRepositories(prefix=unique("sl"), client=client("dynamodb"))
        r.create_tables()
        yield r


def customer(name: str = "Ada", **kw: Any) -> Customer:
    return Customer(customer_id=new_id("cus"), name=name, created_at=T0, updated_at=T0, **kw)


def face(**kw: Any) -> Face:
    base: dict[str, Any] = dict(
        face_id=new_id("fac"),
        event_id=None,
        crop_key="faces/x.jpg",
        captured_at=T0,
        camera_id="cam-1",
        zone="entrance",
        status=FaceStatus.PENDING,
    )
    base.update(kw)
    return Face(**base)


def pending(**kw: Any) -> PendingIdentity:
    base: dict[str, Any] = dict(
        pending_id=new_id("pid"),
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=T0,
        last_seen_at=T0,
        expires_at=T0 + timedelta(days=30),
        store_id="store-1",
    )
    base.update(kw)
    return PendingIdentity(**base)


def visit(customer_id: str, started: datetime, **kw: Any) -> Visit:
    return Visit(
        visit_id=new_id("vis"),
        customer_id=customer_id,
        store_id="store-1",
        camera_id="cam-1",
        zone="entrance",
        started_at=started,
        last_seen_at=started,
        **kw,
    )


def event(**kw: Any) -> FaceEvent:
    import uuid

    base: dict[str, Any] = dict(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        camera_id="cam-1",
        zone="entrance",
        captured_at=T0,
        bbox=BoundingBox(1, 2, 60, 70),
        frame_width=640,
        frame_height=480,
        detector="ssd",
        confidence=0.9,
        track_id="t1",
        crop_jpeg=b"jpeg",
    )
    base.update(kw)
    return FaceEvent(**base)


# ------------------------------------------------------------------ customers


def test_customer_roundtrip_update_delete(repos: Any) -> None:
    c = customer(email="ada@example.com", loyalty_id="L-1", consent=True, consent_at=T0, notes="vip")
    repos.customers.add(c)
    assert repos.customers.get(c.customer_id) == c
    c.name = "Ada Lovelace"
    repos.customers.update(c)
    assert repos.customers.get(c.customer_id).name == "Ada Lovelace"
    assert repos.customers.count() == 1
    repos.customers.delete(c.customer_id)
    with pytest.raises(NotFoundError):
        repos.customers.get(c.customer_id)
    assert repos.customers.count() == 0


def test_customer_conflicts_and_missing(repos: Any) -> None:
    c = customer(loyalty_id="L-9")
    repos.customers.add(c)
    with pytest.raises(ConflictError):
        repos.customers.add(c)
    with pytest.raises(ConflictError):
        repos.customers.add(customer("Other", loyalty_id="L-9"))
    with pytest.raises(NotFoundError):
        repos.customers.update(customer("Ghost"))
    with pytest.raises(NotFoundError):
        repos.customers.get("cus_missing")


def test_customer_search_and_loyalty_lookup(repos: Any) -> None:
    a = customer("Ada", email="ada@example.com", loyalty_id="L-1")
    b = customer("Bob", email="bob@shop.test")
    z = customer("Zoe", loyalty_id="GOLD-7")
    for c in (z, b, a):
        repos.customers.add(c)
    assert [c.name for c in repos.customers.list()] == ["Ada", "Bob", "Zoe"]
    assert [c.name for c in repos.customers.list(search="SHOP")] == ["Bob"]
    assert [c.name for c in repos.customers.list(search="gold")] == ["Zoe"]
    assert [c.name for c in repos.customers.list(search=a.customer_id)] == ["Ada"]
    assert len(repos.customers.list(limit=2)) == 2
    found = repos.customers.find_by_loyalty_id("L-1")
    assert found is not None and found.customer_id == a.customer_id
    assert repos.customers.find_by_loyalty_id("L-404") is None


# ---------------------------------------------------------------------- faces


def test_faces_count_templates_counts_only_indexed_faces(repos: Any) -> None:
    for i in range(3):
        repos.faces.add(face(status=FaceStatus.CUSTOMER, customer_id="cus_1", index_face_id=f"ix-{i}"))
    repos.faces.add(face(status=FaceStatus.CUSTOMER, customer_id="cus_1"))  # a visit photo, not a template
    repos.faces.add(face(status=FaceStatus.CUSTOMER, customer_id="cus_2", index_face_id="ix-9"))
    assert repos.faces.count_templates("cus_1") == 3
    assert repos.faces.count_templates("cus_2") == 1
    assert repos.faces.count_templates("cus_none") == 0


def test_faces_by_owner_status_and_index_id(repos: Any) -> None:
    p = pending()
    f1 = face(pending_id=p.pending_id, index_face_id="idx-1", similarity=0.31)
    f2 = face(pending_id=p.pending_id, captured_at=T0 + timedelta(minutes=1), index_face_id="idx-2")
    f3 = face(customer_id="cus_1", status=FaceStatus.CUSTOMER, index_face_id="idx-3")
    for f in (f2, f1, f3):
        repos.faces.add(f)
    assert repos.faces.get(f1.face_id) == f1
    assert [f.face_id for f in repos.faces.by_pending(p.pending_id)] == [f1.face_id, f2.face_id]
    assert [f.face_id for f in repos.faces.by_customer("cus_1")] == [f3.face_id]
    assert {f.face_id for f in repos.faces.by_status(FaceStatus.PENDING)} == {f1.face_id, f2.face_id}
    owners = repos.faces.by_index_face_ids(["idx-1", "idx-3", "idx-unknown"])
    assert {k: v.face_id for k, v in owners.items()} == {"idx-1": f1.face_id, "idx-3": f3.face_id}
    assert repos.faces.by_index_face_ids([]) == {}
    with pytest.raises(ConflictError):
        repos.faces.add(f1)


def test_face_moves_from_pending_to_customer(repos: Any) -> None:
    f = face(pending_id="pid_1", index_face_id="idx-1")
    repos.faces.add(f)
    f.status, f.pending_id, f.customer_id, f.index_face_id = FaceStatus.CUSTOMER, None, "cus_1", "idx-9"
    repos.faces.update(f)
    assert repos.faces.by_pending("pid_1") == []
    assert repos.faces.by_customer("cus_1") == [f]
    assert set(repos.faces.by_index_face_ids(["idx-1", "idx-9"])) == {"idx-9"}
    repos.faces.delete(f.face_id)
    with pytest.raises(NotFoundError):
        repos.faces.get(f.face_id)
    with pytest.raises(NotFoundError):
        repos.faces.update(f)


# --------------------------------------------------------------------- visits


def test_visits_by_customer_latest_extend_and_between(repos: Any) -> None:
    v1 = visit("cus_1", T0, similarity=0.7)
    v2 = visit("cus_1", T0 + timedelta(days=1, hours=2))
    v3 = visit("cus_2", T0 + timedelta(days=3))
    for v in (v2, v1, v3):
        repos.visits.add(v)
    assert [v.visit_id for v in repos.visits.by_customer("cus_1")] == [v1.visit_id, v2.visit_id]
    latest = repos.visits.latest_for_customer("cus_1")
    assert latest is not None and latest.visit_id == v2.visit_id
    assert repos.visits.latest_for_customer("cus_none") is None
    assert [v.visit_id for v in repos.visits.recent_for_customer("cus_1", 1)] == [v2.visit_id]
    assert [v.visit_id for v in repos.visits.recent_for_customer("cus_1", 5)] == [v2.visit_id, v1.visit_id]
    assert repos.visits.recent_for_customer("cus_none", 5) == []
    later = v2.started_at + timedelta(minutes=20)
    repos.visits.extend(v2.visit_id, later)
    repos.visits.extend(v2.visit_id, v2.started_at)  # never moves backwards
    got = repos.visits.latest_for_customer("cus_1")
    assert got is not None and got.last_seen_at == later and got.dwell_seconds == 1200
    # Half-open [start, end) on started_at, across days, sorted.
    window = repos.visits.between(T0, T0 + timedelta(days=3))
    assert [v.visit_id for v in window] == [v1.visit_id, v2.visit_id]
    assert [
        v.visit_id
        for v in repos.visits.between(T0 + timedelta(seconds=1), v3.started_at + timedelta(seconds=1))
    ] == [v2.visit_id, v3.visit_id]


def test_between_handles_all_time_ranges(repos: Any) -> None:
    """Dashboards ask for everything since 1970; the newest rows must be there."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    v = visit("cus_1", T0)
    repos.visits.add(v)
    repos.transactions.add(Transaction("tx-all", "store-1", T0, 100))
    far = T0 + timedelta(days=3650)
    assert [x.visit_id for x in repos.visits.between(epoch, far)] == [v.visit_id]
    assert [t.transaction_id for t in repos.transactions.between(epoch, far)] == ["tx-all"]
    assert repos.visits.between(T0 + timedelta(seconds=1), far) == []
    assert repos.visits.between(far, epoch) == []


def test_visits_reassign_and_delete(repos: Any) -> None:
    for i in range(3):
        repos.visits.add(visit("cus_a", T0 + timedelta(hours=i)))
    assert repos.visits.reassign("cus_a", "cus_b") == 3
    assert repos.visits.by_customer("cus_a") == []
    assert len(repos.visits.by_customer("cus_b")) == 3
    assert repos.visits.delete_by_customer("cus_b") == 3
    assert repos.visits.between(T0 - timedelta(days=1), T0 + timedelta(days=1)) == []


# -------------------------------------------------------------------- pending


def test_pending_roundtrip_list_and_expired(repos: Any) -> None:
    old = pending(expires_at=T0 + timedelta(hours=1), last_seen_at=T0)
    new = pending(
        kind=PendingKind.REVIEW,
        suggested_customer_id="cus_1",
        suggested_similarity=0.47,
        last_seen_at=T0 + timedelta(hours=2),
        face_count=3,
    )
    done = pending(
        status=PendingStatus.APPROVED, decided_at=T0, decided_by="alice", customer_id="cus_9", expires_at=T0
    )
    for p in (old, new, done):
        repos.pending.add(p)
    assert repos.pending.get(new.pending_id) == new
    assert [p.pending_id for p in repos.pending.list()] == [new.pending_id, old.pending_id]
    assert [p.pending_id for p in repos.pending.list(PendingStatus.APPROVED)] == [done.pending_id]
    everyone = {old.pending_id, new.pending_id, done.pending_id}
    assert {p.pending_id for p in repos.pending.list(None)} == everyone
    assert [p.pending_id for p in repos.pending.expired(T0 + timedelta(hours=2))] == [old.pending_id]
    old.status = PendingStatus.EXPIRED
    repos.pending.update(old)
    assert [p.pending_id for p in repos.pending.expired(T0 + timedelta(days=365))] == [new.pending_id]
    with pytest.raises(ConflictError):
        repos.pending.add(new)
    repos.pending.delete(new.pending_id)
    with pytest.raises(NotFoundError):
        repos.pending.get(new.pending_id)
    with pytest.raises(NotFoundError):
        repos.pending.update(new)


# --------------------------------------------------------------- transactions


def test_transactions_idempotent_link_and_unlink(repos: Any) -> None:
    t1 = Transaction("tx-1", "store-1", T0, 1250, loyalty_id="L-1")
    t2 = Transaction("tx-2", "store-1", T0 + timedelta(days=2), 499, customer_id="cus_1")
    assert repos.transactions.add(t1) is True
    assert repos.transactions.add(t1) is False
    assert repos.transactions.add(t2) is True
    assert [t.transaction_id for t in repos.transactions.between(T0, T0 + timedelta(days=2))] == ["tx-1"]
    assert len(repos.transactions.between(T0, T0 + timedelta(days=3))) == 2
    repos.transactions.link("tx-1", "cus_1")
    assert [t.transaction_id for t in repos.transactions.by_customer("cus_1")] == ["tx-1", "tx-2"]
    with pytest.raises(NotFoundError):
        repos.transactions.link("tx-missing", "cus_1")
    assert repos.transactions.reassign("cus_1", "cus_2") == 2
    assert repos.transactions.unlink_customer("cus_2") == 2
    assert repos.transactions.by_customer("cus_2") == []
    kept = repos.transactions.between(T0, T0 + timedelta(days=3))
    assert [(t.amount_cents, t.customer_id, t.loyalty_id) for t in kept] == [
        (1250, None, None),
        (499, None, None),
    ]
    repos.transactions.link("tx-1", "cus_3")
    repos.transactions.link("tx-1", None)
    assert repos.transactions.by_customer("cus_3") == []


# --------------------------------------------------------------------- events


def test_events_record_is_idempotent_and_feeds_recent(repos: Any) -> None:
    c = customer("Ada")
    repos.customers.add(c)
    e1 = event(captured_at=T0)
    e2 = event(captured_at=T0 + timedelta(minutes=1), camera_id="cam-2")
    e3 = event(captured_at=T0 + timedelta(minutes=2))
    assert not repos.events.is_processed(e1.event_id)
    assert repos.events.record(e1, "faces/1.jpg", "visit", c.customer_id, None, 0.71) is True
    assert repos.events.record(e1, "faces/1.jpg", "visit", c.customer_id, None, 0.71) is False
    assert repos.events.is_processed(e1.event_id)
    repos.events.record(e2, "pending/2.jpg", "pending", None, "pid_1", None)
    repos.events.record(e3, "pending/3.jpg", "pending", None, "pid_1", 0.2)
    recent = repos.events.recent()
    assert [r.event_id for r in recent] == [e3.event_id, e2.event_id, e1.event_id]
    assert recent[2].customer_name == "Ada" and recent[2].similarity == pytest.approx(0.71)
    assert [r.event_id for r in repos.events.recent(limit=1)] == [e3.event_id]
    assert [r.event_id for r in repos.events.recent(camera_id="cam-2")] == [e2.event_id]
    assert [r.event_id for r in repos.events.recent(outcome="visit")] == [e1.event_id]
    assert [r.event_id for r in repos.events.recent(since=T0 + timedelta(seconds=30))] == [
        e3.event_id,
        e2.event_id,
    ]


def test_events_forget_customer_and_pending(repos: Any) -> None:
    e1, e2 = event(), event(captured_at=T0 + timedelta(seconds=5))
    repos.events.record(e1, "faces/1.jpg", "visit", "cus_1", None, 0.8)
    repos.events.record(e2, "pending/2.jpg", "pending", None, "pid_1", None)
    assert repos.events.forget_customer("cus_1") == 1
    assert repos.events.forget_pending("pid_1") == 1
    for row in repos.events.recent():
        assert row.crop_key is None and row.customer_id is None and row.pending_id is None
        assert row.outcome == "erased" and row.similarity is None
    assert repos.events.is_processed(e1.event_id)  # still deduplicated


def test_events_attribute_pending_and_move_crop(repos: Any) -> None:
    e1 = event()
    repos.events.record(e1, "pending/1.jpg", "pending", None, "pid_1", None)
    assert repos.events.attribute_pending("pid_1", "cus_9") == 1
    repos.events.move_crop(e1.event_id, "crops/1.jpg")
    (row,) = repos.events.recent()
    assert (row.customer_id, row.pending_id, row.crop_key) == ("cus_9", "pid_1", "crops/1.jpg")
    assert repos.events.reassign_customer("cus_9", "cus_1") == 1
    assert repos.events.recent()[0].customer_id == "cus_1"


def test_dead_letters_keep_the_payload(repos: Any) -> None:
    d1 = DeadLetter("dl_1", T0, "mqtt", "bad json", "EventSchemaError", None, b"{not json")
    d2 = DeadLetter(
        "dl_2", T0 + timedelta(seconds=1), "lambda", "too small", "FaceTooSmallError", "e-2", b"{}"
    )
    repos.events.add_dead_letter(d1)
    repos.events.add_dead_letter(d2)
    assert repos.events.dead_letters() == [d2, d1]
    assert repos.events.dead_letters(limit=1) == [d2]


# ---------------------------------------------------------------- audit, tokens


def test_audit_newest_first_by_subject(repos: Any) -> None:
    a1 = AuditEntry("aud_1", T0, "alice", "approve", "pid_1", {"customer_id": "cus_1", "n": 2})
    a2 = AuditEntry("aud_2", T0 + timedelta(seconds=1), "bob", "erase", "cus_1", {})
    a3 = AuditEntry("aud_3", T0 + timedelta(seconds=2), "alice", "consent", "pid_1", {})
    for a in (a1, a2, a3):
        repos.audit.append(a)
    assert repos.audit.list() == [a3, a2, a1]
    assert repos.audit.list(subject_id="pid_1") == [a3, a1]
    assert repos.audit.list(limit=1) == [a3]


def test_token_nonce_is_single_use(repos: Any) -> None:
    exp = T0 + timedelta(hours=72)
    assert repos.tokens.consume("nonce-1", exp) is True
    assert repos.tokens.consume("nonce-1", exp) is False
    assert repos.tokens.consume("nonce-2", exp) is True


def test_atomic_groups_writes(repos: Any) -> None:
    c = customer("Unit")
    with repos.atomic():
        repos.customers.add(c)
        repos.audit.append(AuditEntry("aud_x", T0, "t", "approve", c.customer_id, {}))
    assert repos.customers.get(c.customer_id).name == "Unit"


def test_track_links_first_decision_wins_and_can_be_moved_on(repos: Any) -> None:
    pid = new_id("pid")
    # Ids that would collide if the key were a plain join of the three.
    link = TrackLink("store-1", "cam/1", "t-7", None, pid, T0, T0 + timedelta(seconds=2))
    assert repos.tracks.get("store-1", "cam/1", "t-7") is None
    assert repos.tracks.claim(link) == link
    assert repos.tracks.get("store-1", "cam", "1/t-7") is None
    rival = TrackLink("store-1", "cam/1", "t-7", None, new_id("pid"), T0, T0)
    assert repos.tracks.claim(rival) == link  # the first decision stays
    assert repos.tracks.get("store-1", "cam/1", "t-7") == link

    cid = new_id("cus")
    moved = TrackLink("store-1", "cam/1", "t-7", cid, None, T0, T0 + timedelta(minutes=1))
    repos.tracks.put(moved)
    assert repos.tracks.get("store-1", "cam/1", "t-7") == moved


def test_track_links_are_forgotten_by_owner_and_pruned_by_age(repos: Any) -> None:
    cid, pid = new_id("cus"), new_id("pid")
    repos.tracks.put(TrackLink("s", "c", "t1", cid, None, T0, T0))
    repos.tracks.put(TrackLink("s", "c", "t2", None, pid, T0, T0 + timedelta(hours=1)))
    repos.tracks.put(TrackLink("s", "c", "t3", None, pid, T0, T0 + timedelta(days=3)))
    assert repos.tracks.forget(cid) == 1
    assert repos.tracks.get("s", "c", "t1") is None
    assert repos.tracks.prune(T0 + timedelta(days=1)) == 1
    assert repos.tracks.get("s", "c", "t2") is None
    assert repos.tracks.get("s", "c", "t3") is not None
    assert repos.tracks.forget(pid) == 1 and repos.tracks.forget(pid) == 0
