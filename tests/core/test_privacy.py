"""Erasure leaves no trace; retention purges what was never approved."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.bootstrap import Services
from core.models import CustomerDetails, PendingStatus, Transaction, new_id
from core.ports import Decision
from tests.support.events import make_event
from tests.support.photos import photo_bytes


def _every_cell_mentioning(db_path, needle: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(table, column) of every cell in the database whose text contains ``needle``."""
    hits = []
    conn = sqlite3.connect(db_path)
    try:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for col in cols:
                n = conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE CAST("{col}" AS TEXT) LIKE ?', (f"%{needle}%",)
                ).fetchone()[0]
                if n:
                    hits.append((table, col))
    finally:
        conn.close()
    return hits


def test_erase_leaves_no_trace(services: Services) -> None:
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    first = services.ingest.ingest(make_event(photo_bytes("obama"), captured_at=t0))
    services.ingest.ingest(make_event(photo_bytes("obama3"), captured_at=t0 + timedelta(minutes=1)))
    details = CustomerDetails("Barack Obama", "barack@example.com", "L-44", consent=True)
    services.approvals.decide(first.pending_id, Decision("approve", "tester", details))
    customer_id = services.approvals.get(first.pending_id).customer_id
    services.ingest.ingest(make_event(photo_bytes("obama2"), captured_at=t0 + timedelta(days=3)))
    services.repos.transactions.add(
        Transaction(new_id("txn"), "store-1", t0, 1999, loyalty_id="L-44", customer_id=customer_id)
    )
    # Someone else stays untouched.
    other = services.ingest.ingest(make_event(photo_bytes("biden")))
    crops_before = {f.crop_key for f in services.repos.faces.by_customer(customer_id)}
    assert crops_before and all(services.blobs.exists(k) for k in crops_before)
    assert services.notifier.messages()

    report = services.privacy.erase(customer_id, actor="dpo")
    assert report.visits == 2 and report.transactions_unlinked == 1 and report.faces == 3

    db = services.settings.data_dir / "storelens.db"
    for needle in (customer_id, first.pending_id, "Barack", "barack@example.com", "L-44"):
        hits = _every_cell_mentioning(db, needle)
        # Only the audit log may name the opaque id (it says who erased it, not who it was).
        assert all(table == "audit" for table, _col in hits), (needle, hits)
    assert not any(services.blobs.exists(k) for k in crops_before)
    assert all(first.pending_id not in p.name for p, _ in services.notifier.messages())
    index = services.faces.list_faces(services.settings.collection_id)
    assert {f.external_id for f in index} == {other.pending_id}
    (audit,) = [a for a in services.repos.audit.list(customer_id) if a.action == "erase"]
    assert audit.actor == "dpo" and "Barack" not in str(audit.details)
    # The sale is still there, unattributed.
    (sale,) = services.repos.transactions.between(t0 - timedelta(days=1), t0 + timedelta(days=1))
    assert sale.customer_id is None and sale.loyalty_id is None and sale.amount_cents == 1999
    # And the erased person is a stranger again.
    assert services.customers.identify(photo_bytes("obama"))[0].customer_id is None


def test_purge_discards_expired_pending_identities(services: Services) -> None:
    old = services.ingest.ingest(make_event(photo_bytes("biden")))
    fresh = services.ingest.ingest(make_event(photo_bytes("obama")))
    keys = [f.crop_key for f in services.approvals.faces_of(old.pending_id)]
    later = datetime.now(UTC) + timedelta(days=services.settings.pending_ttl_days, hours=1)
    pending = services.approvals.get(fresh.pending_id)
    pending.created_at = later - timedelta(days=1)  # seen for the first time a month later
    pending.expires_at = later + timedelta(days=1)
    services.repos.pending.update(pending)

    assert services.repos.table_counts()["tracks"] == 2
    report = services.privacy.purge(now=later)
    assert report.expired == [old.pending_id]
    assert services.repos.table_counts()["tracks"] == 0  # old track links go with the sweep
    assert services.approvals.get(old.pending_id).status is PendingStatus.EXPIRED
    assert not any(services.blobs.exists(k) for k in keys)
    assert [p.pending_id for p in services.approvals.list_pending()] == [fresh.pending_id]
    assert {f.external_id for f in services.faces.list_faces(services.settings.collection_id)} == {
        fresh.pending_id
    }


def test_a_lower_ttl_applies_to_items_created_before_it(services: Services) -> None:
    from dataclasses import replace as with_changes

    item = services.ingest.ingest(make_event(photo_bytes("biden")))
    in_two_days = datetime.now(UTC) + timedelta(days=2)
    assert services.privacy.purge(now=in_two_days).expired == []  # 30 days by default
    services.privacy.settings = with_changes(services.settings, pending_ttl_days=1)
    assert services.privacy.purge(now=in_two_days).expired == [item.pending_id]


def test_ttls_must_be_positive() -> None:
    from core.errors import SettingsError
    from core.settings import Settings

    for name in ("STORELENS_PENDING_TTL_DAYS", "STORELENS_TOKEN_TTL_HOURS"):
        for bad in ("0", "-3"):
            with pytest.raises(SettingsError, match=name):
                Settings.from_env({name: bad})


def test_auto_purge_runs_in_the_background(services: Services) -> None:
    item = services.ingest.ingest(make_event(photo_bytes("biden")))
    pending = services.approvals.get(item.pending_id)
    pending.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    services.repos.pending.update(pending)
    thread = services.privacy.start_auto_purge(3600)
    assert thread is not None
    thread.join(timeout=0.01)
    for _ in range(600):  # the first round runs at start
        if services.approvals.get(item.pending_id).status is PendingStatus.EXPIRED:
            break
        threading.Event().wait(0.05)
    services.privacy.stop_auto_purge()
    assert services.approvals.get(item.pending_id).status is PendingStatus.EXPIRED
