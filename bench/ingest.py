"""Ingest throughput on the embedded backend: events/s with and without embedding.

Builds N distinct FaceEvents from the package photos (each crop slightly
shifted and re-encoded, so every event is a different image that must be
embedded), then ingests them into a fresh local store twice:

* **with embedding**: the real path (detect + align + 128-D descriptor + search
  + SQLite transaction + crop file), one core;
* **without embedding**: the same events after their embeddings were computed
  and cached, which isolates validation, search, storage and the transaction.

Prints figures; asserts nothing. ``python bench/ingest.py [--events 60]``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from core.bootstrap import build_services
from core.local.faces import LocalFaceIndex
from core.models import FaceEvent
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60)
    args = parser.parse_args(argv)
    events = _events(args.events)
    print(f"ingest benchmark: {len(events)} distinct events from {len(PEOPLE)} photos, one core")
    for warm, label in ((False, "with embedding"), (True, "without embedding (cached)")):
        elapsed, outcomes = _run(events, warm)
        print(
            f"  {label:28s} {len(events) / elapsed:7.1f} events/s"
            f"  ({1000 * elapsed / len(events):6.1f} ms/event)  outcomes={outcomes}"
        )


if __name__ == "__main__":
    main()
