"""The device loop (deeplens_lambda.device.run) against stand-ins for the DeepLens SDKs.

``awscam`` and ``greengrasssdk`` exist only on the device, so this test puts
small fakes of their public surface in ``sys.modules``: a camera that serves a
composited video of one person walking, a model whose ``parseResult`` returns
the SSD dict shape the DeepLens SDK documents (boxes in 300x300 input pixels,
built from the clip's ground truth), and an IoT data client that records
publishes. Everything else (pipeline, tracker, spool, transport, project
stream FIFO) is the real code.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from core.schema import parse_event
from simulator.synth import compose, store_background

FRAMES = 60


class FakeCamera:
    def __init__(self, done: threading.Event) -> None:
        self.index = 0
        self.truth: list[Any] = []
        self.done = done

    def getLastFrame(self) -> tuple[bool, Any]:
        if self.index >= FRAMES:
            self.done.set()
            return False, None
        x = 120 + 6 * self.index
        frame, self.truth = compose(store_background(), [("biden", (float(x), 240.0), 170)])
        self.index += 1
        return True, frame


def fake_sdks(camera: FakeCamera, published: list[tuple[str, bytes]]) -> tuple[Any, Any]:
    awscam = types.ModuleType("awscam")

    class Model:
        def __init__(self, path: str, loading: dict[str, int]) -> None:
            self.path = path

        def doInference(self, frame: Any) -> dict[str, Any]:
            assert frame.shape[:2] == (300, 300)  # the detector resizes to the model input
            return {"raw": True}

        def parseResult(self, kind: str, inference: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
            sx, sy = 300 / 640, 300 / 480
            return {
                kind: [
                    {
                        "label": 1,
                        "prob": 0.93,
                        "xmin": b.left * sx,
                        "ymin": b.top * sy,
                        "xmax": b.right * sx,
                        "ymax": b.bottom * sy,
                    }
                    for _, b in camera.truth
                ]
            }

    awscam.Model = Model
    awscam.getLastFrame = camera.getLastFrame
    greengrasssdk = types.ModuleType("greengrasssdk")

    class IotData:
        def publish(self, *, topic: str, payload: bytes) -> None:
            published.append((topic, payload))

    greengrasssdk.client = lambda name: IotData()
    return awscam, greengrasssdk


def test_device_loop_publishes_through_greengrass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deeplens_lambda import device

    done = threading.Event()
    camera = FakeCamera(done)
    published: list[tuple[str, bytes]] = []
    awscam, greengrasssdk = fake_sdks(camera, published)
    monkeypatch.setitem(sys.modules, "awscam", awscam)
    monkeypatch.setitem(sys.modules, "greengrasssdk", greengrasssdk)
    fifo = tmp_path / "results.mjpeg"
    env = {
        "DEEPLENS_STORE_ID": "store-9",
        "DEEPLENS_CAMERA_ID": "deeplens-1",
        "DEEPLENS_ZONE": "entrance",
        "DEEPLENS_SPOOL": str(tmp_path / "spool.db"),
        "DEEPLENS_FIFO": str(fifo),
        "DEEPLENS_EVERY": "2",
    }
    stream_bytes = bytearray()

    def viewer() -> None:  # what the DeepLens "project stream" viewer does
        while not fifo.exists():
            threading.Event().wait(0.01)
        fd = os.open(fifo, os.O_RDONLY)
        try:
            while len(stream_bytes) < 4:
                stream_bytes.extend(os.read(fd, 65536))
        finally:
            os.close(fd)

    reader = threading.Thread(target=viewer, daemon=True)
    reader.start()
    loop = threading.Thread(target=device.run, args=(env, done), daemon=True)
    loop.start()
    loop.join(60)
    assert not loop.is_alive()
    reader.join(10)

    assert published, "nothing was published"
    topics = {topic for topic, _ in published}
    assert topics == {"storelens/store-9/deeplens-1/faces"}
    events = [parse_event(payload) for _, payload in published]
    assert len({e.track_id for e in events}) == 1  # one person, one track
    assert all(e.detector == "awscam-ssd" and e.confidence == pytest.approx(0.93) for e in events)
    assert all(json.loads(payload)["zone"] == "entrance" for _, payload in published)
    assert bytes(stream_bytes[:2]) == b"\xff\xd8"  # annotated JPEG frames reach the project stream


def _run_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> list[bytes]:
    from deeplens_lambda import device

    done = threading.Event()
    camera = FakeCamera(done)
    published: list[tuple[str, bytes]] = []
    awscam, greengrasssdk = fake_sdks(camera, published)
    monkeypatch.setitem(sys.modules, "awscam", awscam)
    monkeypatch.setitem(sys.modules, "greengrasssdk", greengrasssdk)
    tmp_path.mkdir(parents=True, exist_ok=True)
    fifo = tmp_path / "results.mjpeg"
    os.mkfifo(fifo)
    drain = threading.Thread(target=lambda: open(fifo, "rb").read(), daemon=True)  # noqa: SIM115
    drain.start()
    env = {
        "DEEPLENS_CAMERA_ID": "deeplens-1",
        "DEEPLENS_SPOOL": str(tmp_path / "spool.db"),
        "DEEPLENS_FIFO": str(fifo),
        "DEEPLENS_SCRATCH": str(tmp_path / "scratch"),
        **extra,
    }
    loop = threading.Thread(target=device.run, args=(env, done), daemon=True)
    loop.start()
    loop.join(90)
    assert not loop.is_alive()
    return [payload for _, payload in published]


def test_device_with_unmatched_anonymous_sends_crops_only_of_consented_customers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from core.gallery import GALLERY_KEY, encode_templates
    from core.local.faces import LocalFaceIndex
    from core.ports import ConsentedTemplates
    from tests.aws.moto_support import REGION, client, moto, unique
    from tests.support.photos import photo_bytes

    with moto():
        s3, bucket = client("s3"), unique("crops")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        env = {"DEEPLENS_UNMATCHED": "anonymous", "DEEPLENS_GALLERY_BUCKET": bucket, "AWS_REGION": REGION}
        # Nobody has consented (no gallery object yet): biden leaves only as a sighting.
        sent = _run_device(tmp_path / "a", monkeypatch, env)
        docs = [json.loads(p) for p in sent]
        assert len(docs) == 1 and docs[0]["crops"] == [] and "sighting" in docs[0]
        assert parse_event(sent[0]).is_anonymous
        # Once he is in the consented gallery, his crops are sent as usual.
        vector = LocalFaceIndex(tmp_path / "backend").embed_image(photo_bytes("biden"))
        gallery = ConsentedTemplates(("cus_biden",), ("face-1",), np.asarray([vector], np.float32))
        s3.put_object(Bucket=bucket, Key=GALLERY_KEY, Body=encode_templates(gallery))
        sent = _run_device(tmp_path / "b", monkeypatch, env)
        docs = [json.loads(p) for p in sent]
        assert docs and all(d["crops"] for d in docs)


def test_device_refuses_an_unknown_unmatched_mode() -> None:
    from core.errors import SettingsError
    from deeplens_lambda.device import _gate

    assert _gate({}) is None
    with pytest.raises(SettingsError, match="use 'send' or 'anonymous'"):
        _gate({"DEEPLENS_UNMATCHED": "drop"})
    with pytest.raises(SettingsError, match="DEEPLENS_GALLERY_BUCKET"):
        _gate({"DEEPLENS_UNMATCHED": "anonymous"})
