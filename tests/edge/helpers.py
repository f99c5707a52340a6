"""Helpers for the edge tests: a real mosquitto broker and real FaceEvents."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from core.models import CROP_MARGIN, BoundingBox, FaceEvent
from deeplens_lambda.pipeline import encode_jpeg
from simulator.synth import compose, store_background


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A real mosquitto broker on a free loopback port, with persistence in ``workdir``.

    Persistence keeps a subscriber's (clean_session=False) session and queued
    QoS 1/2 messages across :meth:`stop` / :meth:`start`, like a production broker.
    """

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install -y mosquitto")
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "persistence_file mosquitto.db\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text()[-2000:] if path.exists() else ""


@lru_cache(maxsize=1)
def _box() -> BoundingBox:
    return compose(store_background(), [("grace", (320.0, 240.0), 170)])[1][0][1]


@lru_cache(maxsize=1)
def _crop() -> bytes:
    frame, ((_, box),) = compose(store_background(), [("grace", (320.0, 240.0), 170)])
    region = box.expand(CROP_MARGIN).clip(640, 480)
    return encode_jpeg(frame[region.top : region.bottom, region.left : region.right])


def make_event(i: int, *, camera_id: str = "cam-entrance", zone: str = "entrance") -> FaceEvent:
    """A schema-valid FaceEvent with a real JPEG face crop, numbered ``i`` in its track id."""
    box = _box()
    return FaceEvent(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        camera_id=camera_id,
        zone=zone,
        captured_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC) + timedelta(seconds=i),
        bbox=box,
        frame_width=640,
        frame_height=480,
        detector="hog",
        confidence=0.8,
        track_id=f"{camera_id}-test-{i}",
        crop_jpeg=_crop(),
    )
