"""Replaying generated clips through the edge pipeline into the real local backend."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.bootstrap import Services
from deeplens_lambda.publishers import InProcessPublisher, MqttTransport, SpoolingPublisher
from deeplens_lambda.spool import Spool
from simulator.photos import photo
from simulator.replay import ReplayProgress, replay
from simulator.synth import Clip
from tests.edge.helpers import Mosquitto
from tests.edge.test_mqtt import Subscriber

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_k_people_become_k_pending_identities(services: Services, three_people_clip: Clip) -> None:
    publisher = InProcessPublisher(services.ingest, source="simulator")
    summary = replay(
        three_people_clip.path,
        publisher,
        camera_id="cam-entrance",
        zone="entrance",
        every=3,
        start_time=START,
    )
    assert summary.frames == three_people_clip.frames
    assert summary.tracks == 3
    assert 3 <= summary.events <= 6  # per person a first event and at most a final one
    assert summary.pending_identities == 3
    assert publisher.rejected == 0
    pending = services.approvals.list_pending()
    assert len(pending) == 3
    assert all(p.face_count >= 1 for p in pending)

    # The same people walking in again join their pending identities instead of opening new ones.
    again = replay(
        three_people_clip.path,
        publisher,
        camera_id="cam-entrance",
        zone="entrance",
        start_time=START.replace(day=3),
    )
    assert again.pending_ids == summary.pending_ids
    assert len(services.approvals.list_pending()) == 3


def test_enrolled_people_become_visits(services: Services, three_people_clip: Clip) -> None:
    images = [photo("obama2").read_bytes(), photo("obama3").read_bytes()]  # not the photo in the clip
    obama = services.customers.enroll("Barack Obama", images, loyalty_id="L-1", consent=True, actor="test")
    summary = replay(
        three_people_clip.path,
        InProcessPublisher(services.ingest),
        camera_id="cam-entrance",
        zone="entrance",
        start_time=START,
    )
    assert summary.visits >= 1  # his first event opens the visit, a final one extends it
    assert summary.customer_ids == {obama.customer_id}
    assert summary.pending_identities == 2
    visits = services.repos.visits.by_customer(obama.customer_id)
    assert len(visits) == 1
    assert visits[0].camera_id == "cam-entrance" and visits[0].zone == "entrance"
    assert START <= visits[0].started_at <= START.replace(minute=1)


def test_progress_and_stop(services: Services, three_people_clip: Clip) -> None:
    stop = threading.Event()
    seen: list[ReplayProgress] = []

    def progress(p: ReplayProgress) -> None:
        seen.append(p)
        if p.frame == 40:
            stop.set()

    summary = replay(
        three_people_clip.path, InProcessPublisher(services.ingest), progress=progress, stop=stop
    )
    assert summary.stopped
    assert summary.frames == 40
    assert [p.frame for p in seen] == list(range(1, 41))
    assert seen[-1].total == three_people_clip.frames
    assert all(p.fps > 0 for p in seen)


@pytest.mark.mosquitto
def test_replay_over_mqtt_survives_a_broker_restart(tmp_path: Path, many_events_clip: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    sub = Subscriber(broker.port)
    assert sub.subscribed.wait(10)
    publisher = SpoolingPublisher(
        MqttTransport("127.0.0.1", broker.port, retry_seconds=0.1, timeout=3.0), Spool(tmp_path / "spool.db")
    )
    published: list[str] = []
    original = publisher.publish

    def publish(event):  # remember what the edge produced, in order
        published.append(event.event_id)
        original(event)

    publisher.publish = publish  # type: ignore[method-assign]
    down_at: list[int] = []

    def on_frame(index: int, _frame: object) -> None:
        if len(published) == 3 and broker.proc is not None and not down_at:
            sub.wait_for(3)
            time.sleep(0.5)
            broker.stop()  # the broker dies mid-replay
            down_at.append(index)
        if down_at and broker.proc is None and len(published) >= 6:
            assert publisher.pending > 0  # spooled while the broker was away
            broker.start()
            assert sub.subscribed.wait(10)
            time.sleep(0.2)

    try:
        summary = replay(
            many_events_clip, publisher, camera_id="cam-aisles", zone="aisles", on_frame=on_frame
        )
    finally:
        publisher.close(drain_timeout=10)
    sub.wait_for(len(published))
    time.sleep(0.5)
    sub.close()
    broker.stop()
    assert down_at, "the broker was never stopped"
    assert summary.events == len(published) >= 8
    assert sub.received == published  # every event exactly once, in order


def test_cli_replay_prints_a_summary(tmp_path: Path, three_people_clip: Clip) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELENS_")}
    env["STORELENS_DATA_DIR"] = str(tmp_path / "data")
    env["STORELENS_SECRET_KEY"] = "test-secret"
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "replay",
            str(three_people_clip.path),
            "--camera",
            "cam-entrance",
            "--zone",
            "entrance",
            "--speed",
            "max",
            "--every",
            "3",
            "--backend",
            "local",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "pending ids      3" in out.stdout
    assert "tracks           3" in out.stdout
    assert "frame" in out.stderr  # the tqdm progress bar


def test_cli_edge_settings_come_from_flag_env_store_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import Settings
    from simulator.__main__ import _edge_options, build_parser

    for key in ("STORELENS_MIN_FACE_PX", "STORELENS_CROPS_PER_TRACK"):
        monkeypatch.delenv(key, raising=False)
    parse = build_parser().parse_args
    opts = _edge_options(parse(["replay", "x.mp4", "--camera", "cam-new"]), Settings())
    assert opts == {"detector": "yunet", "every": 3, "min_face_px": 40, "crops_per_track": 5}
    monkeypatch.setenv("STORELENS_CROPS_PER_TRACK", "3")
    args = parse(["replay", "x.mp4", "--camera", "cam-entrance", "--min-face-px", "60"])
    opts = _edge_options(args, Settings.from_env(dict(STORELENS_CROPS_PER_TRACK="3")))
    assert opts["min_face_px"] == 60 and opts["crops_per_track"] == 3
    args = parse(["replay", "x.mp4", "--detector", "hog", "--every", "2"])
    assert _edge_options(args, Settings())["detector"] == "hog"
