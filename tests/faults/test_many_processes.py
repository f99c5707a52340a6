"""Several real processes on one data dir; kill -9 mid-ingest; erasure that leaves no copy on disk.

These use real ``multiprocessing`` (spawn) and subprocesses with the real
models on a tmp data dir, so they take a few tens of seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.bootstrap import build_services
from core.errors import ValidationError
from core.models import CustomerDetails, IngestOutcome
from core.ports import Decision
from core.schema import event_to_json
from tests.conftest import make_settings
from tests.faults import workers
from tests.support.events import make_event
from tests.support.photos import photo_bytes

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PEOPLE = {"obama": ["obama", "obama2", "obama3"], "biden": ["biden"], "hopper": ["grace_hopper"]}


def _event_json(photo: str, minute: int, event_id: str | None = None) -> str:
    event = make_event(photo_bytes(photo), captured_at=T0 + timedelta(minutes=minute), event_id=event_id)
    return event_to_json(event)


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "storelens.db")


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def test_four_processes_ingesting_the_same_and_overlapping_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_services(make_settings(data)).close()  # create the schema once, as an installer would
    shared = [_event_json(p, i) for i, p in enumerate(["obama", "biden", "obama2", "grace_hopper", "obama3"])]
    own = [[_event_json("obama2", 10 + w), _event_json("biden", 20 + w)] for w in range(4)]
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = []
    for w in range(4):
        payloads = shared + own[w]
        random.Random(w).shuffle(payloads)
        procs.append(
            ctx.Process(target=workers.ingest_all, args=(str(data), payloads, barrier, results, f"w{w}"))
        )
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    flat = [o for rows in outcomes.values() for o in rows]
    assert not [o for o in flat if o[1].startswith("error")]
    # 5 shared events x 4 processes: each stored once, 15 reported as duplicates.
    assert sum(o[1] == IngestOutcome.DUPLICATE.value for o in flat) == 15
    conn = _db(data)
    assert _count(conn, "SELECT count(*) FROM events") == 13
    assert _count(conn, "SELECT count(*) FROM faces") == 13
    # Three people, however the processes interleaved: one pending identity each.
    assert _count(conn, "SELECT count(*) FROM pending_identities") == 3
    assert _count(conn, "SELECT count(*) FROM face_vectors") == 13
    assert (
        _count(conn, "SELECT count(*) FROM faces f JOIN face_vectors v ON v.face_id = f.index_face_id") == 13
    )
    pending_of = dict(conn.execute("SELECT event_id, pending_id FROM events"))
    by_person = {
        person: {pending_of[json.loads(s)["event_id"]] for s in shared if _photo_of(s, person)}
        for person in PEOPLE
    }
    assert all(len(ids) == 1 for ids in by_person.values()), by_person
    assert len(list((data / "outbox").glob("*.eml"))) == 3  # one e-mail per pending identity
    services = build_services(make_settings(data))
    assert services.faces.count(services.settings.collection_id) == 13  # a fresh process's cache == rows
    services.close()


def _photo_of(payload: str, person: str) -> bool:
    minute = datetime.fromisoformat(json.loads(payload)["captured_at"].replace("Z", "+00:00")).minute
    return ["obama", "biden", "obama", "hopper", "obama"][minute] == person


def test_kill_9_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_services(make_settings(data)).close()
    photos = ["obama", "biden", "obama2", "grace_hopper", "obama3"]
    crops = [_event_json(p, i) for i, p in enumerate(photos)]
    ack = tmp_path / "acked.txt"
    ack.touch()
    rng = random.Random(7)
    sent: set[str] = set()
    for run in range(3):
        events = tmp_path / f"events{run}.jsonl"
        lines = []
        for i in range(40):
            event = json.loads(crops[i % len(crops)])
            event["event_id"] = str(uuid.uuid4())
            sent.add(event["event_id"])
            lines.append(json.dumps(event))
        events.write_text("\n".join(lines) + "\n")
        before = len(ack.read_text().split())
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.workers", str(data), str(events), str(ack)], cwd=REPO
        )
        deadline = time.monotonic() + 120
        while len(ack.read_text().split()) < before + 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the ingest worker died on its own"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    acked = set(ack.read_text().split())
    assert acked and acked <= sent
    conn = _db(data)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in conn.execute("SELECT event_id FROM events")}
    assert acked <= stored
    for (key,) in conn.execute("SELECT crop_key FROM faces"):
        assert (data / "blobs" / key).is_file(), key
    rows = {r[0] for r in conn.execute("SELECT index_face_id FROM faces WHERE index_face_id IS NOT NULL")}
    assert rows == {r[0] for r in conn.execute("SELECT face_id FROM face_vectors")}
    services = build_services(make_settings(data))  # restarts cleanly; leftovers are swept
    assert services.faces.count(services.settings.collection_id) == len(rows)
    assert not list((data / "blobs").rglob(".tmp-*"))
    # Redelivering (the publisher's retry) stores what was lost, nothing twice.
    again = (tmp_path / "events0.jsonl").read_text().split("\n")[:5]
    for line in again:
        services.ingest.ingest(line)
    expected = stored | {json.loads(line)["event_id"] for line in again}
    assert _count(conn, "SELECT count(*) FROM events") == len(expected)
    services.close()


def _windows(vectors: list[np.ndarray]) -> list[bytes]:
    """Byte patterns of each template: 8 consecutive values, as float32 and float64, from 3 offsets."""
    out = []
    for v in vectors:
        for start in (0, 60, 120):
            out.append(v[start : start + 8].astype("<f4").tobytes())
            out.append(v[start : start + 8].astype("<f8").tobytes())
    return out


def _copies_on_disk(root: Path, patterns: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            found += [f"{path.relative_to(root)}" for p in patterns if blob.find(p) >= 0]
    return found


def _templates(data: Path, external_ids: list[str]) -> list[np.ndarray]:
    conn = _db(data)
    marks = ",".join("?" * len(external_ids))
    rows = conn.execute(f"SELECT vector FROM face_vectors WHERE external_id IN ({marks})", external_ids)
    vectors = [np.frombuffer(r[0], dtype="<f4").copy() for r in rows]
    conn.close()
    return vectors


def test_erase_reject_and_purge_leave_no_copy_of_the_embedding(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = build_services(make_settings(data))
    stale = build_services(make_settings(data))  # another "process" that loaded the index earlier
    cid = services.settings.collection_id
    assert stale.faces.count(cid) == 0
    obama = [services.ingest.ingest(_event_json(p, i)) for i, p in enumerate(PEOPLE["obama"])]
    biden = services.ingest.ingest(_event_json("biden", 5))
    hopper = services.ingest.ingest(_event_json("grace_hopper", 6))
    # A bad event for Obama's first event id lands in the dead letters with its image.
    bad = json.loads(_event_json("obama", 0, event_id=obama[0].event_id))
    bad["zone"] = 7
    with pytest.raises(ValidationError):
        services.ingest.ingest(json.dumps(bad))
    assert stale.faces.count(cid) == 5
    pid = obama[0].pending_id
    assert pid is not None
    services.approvals.decide(
        pid, Decision("approve", "t", CustomerDetails("B O", "b@example.com", consent=True))
    )
    customer_id = services.repos.pending.get(pid).customer_id
    assert customer_id
    erased = _templates(data, [customer_id, pid])
    rejected = _templates(data, [biden.pending_id or ""])
    expired = _templates(data, [hopper.pending_id or ""])
    assert erased and rejected and expired
    services.privacy.erase(customer_id, actor="t")
    services.approvals.decide(biden.pending_id or "", Decision("reject", "t"))
    services.privacy.purge(now=datetime.now(UTC) + timedelta(days=365))
    # The stale process writes after the erasure: it must not bring anything back.
    stale.ingest.ingest(_event_json("astronaut", 30))
    assert stale.faces.count(cid) == services.faces.count(cid) == 1
    stale.close()
    services.close()
    assert _copies_on_disk(data, _windows(erased)) == []
    assert _copies_on_disk(data, _windows(rejected)) == []
    assert _copies_on_disk(data, _windows(expired)) == []
    conn = _db(data)
    (letter,) = conn.execute("SELECT payload, reason FROM dead_letters").fetchall()
    assert letter[1] and b"dropped" in letter[0] and len(letter[0]) < 2000  # reason kept, image gone
