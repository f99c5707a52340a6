"""Code the fault tests run in other processes (importable, so ``spawn`` can start it)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def ingest_all(data_dir: str, payloads: list[str], barrier: Any, results: Any, name: str) -> None:
    """Ingest ``payloads`` on ``data_dir`` after every worker is ready; put outcomes on ``results``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from core.bootstrap import build_services
    from core.errors import StoreLensError
    from tests.conftest import make_settings

    services = build_services(make_settings(Path(data_dir)))
    services.faces.detect_faces(payload_crop(payloads[0]))  # load the models before the race
    barrier.wait()
    outcomes = []
    for payload in payloads:
        try:
            result = services.ingest.ingest(payload, source=name)
            outcomes.append((json.loads(payload)["event_id"], result.outcome.value, result.pending_id))
        except StoreLensError as exc:
            outcomes.append(("", f"error:{type(exc).__name__}", str(exc)))
    services.close()
    results.put((name, outcomes))


def payload_crop(payload: str) -> bytes:
    from core.schema import parse_event

    return parse_event(payload).crop_jpeg


def ingest_forever(data_dir: str, events_file: str, ack_file: str) -> None:
    """Ingest ``events_file`` (one JSON per line), appending each acknowledged id to ``ack_file``.

    The kill -9 test kills this at a random moment: every id written to
    ``ack_file`` was acknowledged (``ingest`` returned) before the kill.
    """
    from core.bootstrap import build_services
    from tests.conftest import make_settings

    services = build_services(make_settings(Path(data_dir)))
    with open(events_file, encoding="utf-8") as fh, open(ack_file, "a", encoding="utf-8") as ack:
        for line in fh:
            result = services.ingest.ingest(line)
            ack.write(f"{result.event_id}\n")
            ack.flush()
            os.fsync(ack.fileno())


if __name__ == "__main__":
    ingest_forever(sys.argv[1], sys.argv[2], sys.argv[3])
