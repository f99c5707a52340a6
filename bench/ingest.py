"""Ingest throughput on the embedded backend: events/s with and without embedding.

Builds N distinct FaceEvents from the package photos (each crop slightly
shifted and re-encoded, so every event is a different image that must be
embedded), then ingests them into a fresh local store twice:

* **with embedding**: the real path (detect + align + 128-D descriptor + search
  + SQLite transaction + crop file), one core;
* **without embedding**: the same events after their embeddings were computed
  and cached, which isolates validation, search, storage and the transaction.

Then the multi-process figures (several processes on ONE data dir, as the
dashboard, CLI and ingest workers share it): aggregate events/s with 1, 2 and
4 processes, each ingesting its own share (with embedding, and with cached
embeddings to show the cost of the shared write lock); search latency at
``--faces`` (100k) templates including the catch-up check, with and without
another process having written since; and the time of an erasure there.

Prints figures; asserts nothing. ``python bench/ingest.py [--events 60] [--faces 100000]``
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from core.bootstrap import build_services
from core.local.faces import LocalFaceIndex
from core.models import FaceEvent
from core.schema import event_to_json
from core.settings import Settings
from tests.support.events import make_event
from tests.support.photos import photo_bytes

PEOPLE = ("obama", "obama2", "obama3", "biden", "grace_hopper", "astronaut")


def _variant(event: FaceEvent, i: int) -> FaceEvent:
    """A distinct but realistic crop: shifted a few pixels, new JPEG bytes."""
    with Image.open(io.BytesIO(event.crop_jpeg)) as img:
        w, h = img.size
        dx, dy = (i % 5) - 2, (i // 5 % 5) - 2
        box = (max(0, dx), max(0, dy), min(w, w + dx), min(h, h + dy))
        out = io.BytesIO()
        img.convert("RGB").crop(box).save(out, format="JPEG", quality=88 + i % 8)
    return FaceEvent(
        **{
            **{f: getattr(event, f) for f in FaceEvent.__dataclass_fields__},
            "event_id": str(uuid.uuid4()),
            "captured_at": event.captured_at + timedelta(seconds=i),
            "crop_jpeg": out.getvalue(),
        }
    )


def _events(n: int) -> list[FaceEvent]:
    base = [make_event(photo_bytes(p), captured_at=datetime(2026, 11, 1, 9, tzinfo=UTC)) for p in PEOPLE]
    return [_variant(base[i % len(base)], i) for i in range(n)]


def _run(events: list[FaceEvent], warm: bool) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        index = LocalFaceIndex(Path(tmp), cache_size=len(events) + 8)
        if warm:
            for e in events:
                index.embed_image(e.crop_jpeg)
        services = build_services(
            Settings.from_env({}, data_dir=Path(tmp), secret_key="bench"), face_index=index
        )
        outcomes: dict[str, int] = {}
        start = time.perf_counter()
        for e in events:
            outcome = services.ingest.ingest(e).outcome.value
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        elapsed = time.perf_counter() - start
        services.close()
        return elapsed, outcomes


def _worker(data_dir: str, payloads: list[bytes], warm: bool, barrier: Any, out: Any) -> None:
    from core.schema import parse_event

    services = build_services(Settings.from_env({}, data_dir=Path(data_dir), secret_key="bench"))
    faces = services.faces
    assert isinstance(faces, LocalFaceIndex)
    faces._cache_size = len(payloads) + 8
    faces.detect_faces(parse_event(payloads[0]).crop_jpeg)  # models loaded before the clock starts
    if warm:
        for payload in payloads:
            faces.embed_image(parse_event(payload).crop_jpeg)
    barrier.wait()
    start = time.perf_counter()
    for payload in payloads:
        services.ingest.ingest(payload)
    out.put((start, time.perf_counter()))
    services.close()


def _run_processes(events: list[FaceEvent], procs: int, warm: bool) -> float:
    ctx = multiprocessing.get_context("spawn")
    payloads = [event_to_json(e) for e in events]
    with tempfile.TemporaryDirectory() as tmp:
        build_services(Settings.from_env({}, data_dir=Path(tmp), secret_key="bench")).close()
        barrier, out = ctx.Barrier(procs), ctx.Queue()
        workers = [
            ctx.Process(target=_worker, args=(tmp, payloads[i::procs], warm, barrier, out))
            for i in range(procs)
        ]
        for w in workers:
            w.start()
        spans = [out.get() for _ in workers]
        for w in workers:
            w.join()
        return len(events) / (max(e for _, e in spans) - min(s for s, _ in spans))


def _search_and_erase(faces_n: int) -> None:
    import numpy as np

    from core.models import Customer, CustomerDetails

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({}, data_dir=Path(tmp), secret_key="bench")
        services = build_services(settings)
        other = LocalFaceIndex(Path(tmp))  # "another process" on the same data dir
        index = services.faces
        assert isinstance(index, LocalFaceIndex)
        cid = settings.collection_id
        rng = np.random.default_rng(0)
        data = rng.normal(scale=0.12, size=(faces_n, 128)).astype(np.float32)
        start = time.perf_counter()
        for lo in range(0, faces_n, 10_000):
            index.add_vectors(
                cid, data[lo : lo + 10_000], [f"cus_{i % 5000}" for i in range(lo, lo + 10_000)]
            )
        print(f"  stored {faces_n} templates in SQLite in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        index.count(cid)
        print(f"  first load into a process's cache: {time.perf_counter() - start:.2f} s")
        queries = data[rng.integers(0, faces_n, 50)] + rng.normal(scale=0.03, size=(50, 128)).astype(
            np.float32
        )
        index.search_by_vector(cid, queries[0], 0.5, 5)
        times = []
        for q in queries:
            t = time.perf_counter()
            index.search_by_vector(cid, q, 0.5, 5)
            times.append(time.perf_counter() - t)
        print(f"  search at {faces_n} faces, no change since: median {1000 * sorted(times)[25]:.2f} ms")
        times = []
        for q in queries[:20]:
            other.add_vectors(cid, q[None], ["pid_bench"])  # committed by another connection
            t = time.perf_counter()
            index.search_by_vector(cid, q, 0.5, 5)
            times.append(time.perf_counter() - t)
        median = 1000 * sorted(times)[10]
        print(f"  search after another process added a face (incremental catch-up): median {median:.2f} ms")
        t = time.perf_counter()
        for _ in range(2000):
            index._fresh(cid)
        print(f"  the change check alone: {1e6 * (time.perf_counter() - t) / 2000:.1f} us")
        customer = Customer.from_details(CustomerDetails("Bench Person", consent=True))
        services.repos.customers.add(customer)
        index.add_vectors(cid, data[:12], [customer.customer_id] * 12)
        t = time.perf_counter()
        services.privacy.erase(customer.customer_id, actor="bench")
        took = 1000 * (time.perf_counter() - t)
        print(f"  erase (12 templates, secure delete + WAL truncate) at {faces_n} faces: {took:.0f} ms")
        services.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--skip-single", action="store_true", help="skip the one-process figures")
    parser.add_argument("--skip-processes", action="store_true", help="skip the multi-process figures")
    args = parser.parse_args(argv)
    events = _events(args.events)
    if not args.skip_single:
        print(f"ingest benchmark: {len(events)} distinct events from {len(PEOPLE)} photos, one core")
        for warm, label in ((False, "with embedding"), (True, "without embedding (cached)")):
            elapsed, outcomes = _run(events, warm)
            print(
                f"  {label:28s} {len(events) / elapsed:7.1f} events/s"
                f"  ({1000 * elapsed / len(events):6.1f} ms/event)  outcomes={outcomes}"
            )
    if not args.skip_processes:
        print(f"several processes on one data dir ({os.cpu_count()} cores), {len(events)} events in all:")
        for warm, label in ((False, "with embedding"), (True, "embeddings cached")):
            rates = {n: _run_processes(events, n, warm) for n in (1, 2, 4)}
            print(f"  {label:18s} " + "  ".join(f"{n} proc: {r:6.1f} ev/s" for n, r in rates.items()))
    print(f"search and erase at {args.faces} faces:")
    _search_and_erase(args.faces)


if __name__ == "__main__":
    main()
