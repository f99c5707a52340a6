"""The DeepLens device adapter: the only module that touches awscam, mo and greengrasssdk.

Those SDKs exist only on the device (``greengrasssdk`` from PyPI fails off it),
so they are imported inside functions, never at module level. Importing this
module off the device is safe and starts nothing.

Deploy as a *long-lived* Greengrass Lambda with handler
``deeplens_lambda.device.function_handler`` and the environment variable
``DEEPLENS_AUTOSTART=1``; Greengrass imports the module once and the frame loop
(:func:`run`) starts in a background thread:

``awscam.getLastFrame()`` -> detect (on-device SSD) -> track -> best crop ->
FaceEvent -> spool -> Greengrass IoT publish on ``storelens/{store}/{camera}/faces``,
and the annotated frame goes to the DeepLens project stream (the FIFO at
``/tmp/results.mjpeg`` that the DeepLens samples write).

Settings come from environment variables of the Lambda (not ``STORELENS_*``,
which the backend validates strictly): ``DEEPLENS_STORE_ID``,
``DEEPLENS_CAMERA_ID``, ``DEEPLENS_ZONE``, ``DEEPLENS_MODEL_PATH`` (the optimised
model, default ``/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml``),
``DEEPLENS_INPUT_SIZE`` (300), ``DEEPLENS_THRESHOLD`` (0.5), ``DEEPLENS_EVERY`` (2),
``DEEPLENS_SPOOL`` (``/tmp/storelens-spool.db``), ``DEEPLENS_FIFO`` (``/tmp/results.mjpeg``),
``DEEPLENS_UNMATCHED`` (``send``; ``anonymous`` with ``DEEPLENS_GALLERY_BUCKET``: see :func:`_gate`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from core.models import DetectedFace
from deeplens_lambda.detectors import parse_awscam_ssd
from deeplens_lambda.publishers import TransportError, topic_for

if TYPE_CHECKING:
    from deeplens_lambda.consent_gate import UnmatchedGate

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
FIFO_PATH = "/tmp/results.mjpeg"


def _require(module: str) -> Any:
    """Import a device-only SDK with a clear error off the device."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        from core.errors import MissingDependencyError

        raise MissingDependencyError(
            f"{module} is only available on an AWS DeepLens device; off the device use the "
            "'hog' or 'mxnet' detector and the MQTT or in-process publisher"
        ) from exc


class AwscamSSDDetector:
    """The on-device SSD face model through ``awscam.Model(...).doInference``."""

    name = "awscam-ssd"

    def __init__(
        self,
        *,
        model_path: str = DEFAULT_MODEL_PATH,
        input_size: int = 300,
        threshold: float = 0.5,
        loading: Mapping[str, int] | None = None,
    ) -> None:
        awscam = _require("awscam")
        self.input_size = int(input_size)
        self.threshold = float(threshold)
        self._model = awscam.Model(model_path, dict(loading or {"GPU": 1}))

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        import cv2

        h, w = frame.shape[:2]
        resized = cv2.resize(frame, (self.input_size, self.input_size))
        inference = self._model.doInference(resized)
        parsed = self._model.parseResult("ssd", inference)
        return parse_awscam_ssd(
            parsed,
            frame_width=w,
            frame_height=h,
            input_width=self.input_size,
            input_height=self.input_size,
            threshold=self.threshold,
        )


class GreengrassTransport:
    """Publish through the Greengrass core's local IoT data plane."""

    def __init__(self) -> None:
        greengrasssdk = _require("greengrasssdk")
        self._client = greengrasssdk.client("iot-data")

    def send(self, topic: str, payload: bytes) -> None:
        try:
            self._client.publish(topic=topic, payload=payload)
        except Exception as exc:  # the SDK raises its own unexported error types
            raise TransportError(f"Greengrass publish to {topic} failed: {exc}") from exc

    def close(self) -> None:
        """Nothing to release."""


class ProjectStream:
    """Writes annotated frames to the DeepLens project stream FIFO (viewable on the device)."""

    def __init__(self, path: str = FIFO_PATH, size: tuple[int, int] = (858, 480)) -> None:
        self.path = path
        self.size = size
        self._frame: bytes | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if not os.path.exists(path):
            os.mkfifo(path)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def set_frame(self, frame: np.ndarray, boxes: Mapping[str, Any]) -> None:
        import cv2

        img = frame.copy()
        for track_id, box in boxes.items():
            cv2.rectangle(img, (box.left, box.top), (box.right, box.bottom), (255, 165, 20), 4)
            cv2.putText(
                img,
                track_id.rsplit("-", 1)[-1],
                (box.left, max(0, box.top - 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                1.0,
                (255, 165, 20),
                2,
            )
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(img, self.size))
        if ok:
            with self._lock:
                self._frame = jpeg.tobytes()

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                with open(self.path, "wb") as fifo:  # blocks until a reader opens the stream
                    while not self._stop.is_set():
                        with self._lock:
                            data = self._frame
                        if data:
                            fifo.write(data)
                            fifo.flush()
                        time.sleep(0.05)
            except BrokenPipeError:  # the viewer went away; wait for the next one
                continue

    def stop(self) -> None:
        self._stop.set()


def run(environ: Mapping[str, str] | None = None, stop: threading.Event | None = None) -> None:
    """The device frame loop (runs until ``stop`` is set)."""
    from deeplens_lambda.pipeline import EdgeContext, EdgePipeline
    from deeplens_lambda.publishers import SpoolingPublisher
    from deeplens_lambda.spool import Spool

    env = os.environ if environ is None else environ
    awscam = _require("awscam")
    store = env.get("DEEPLENS_STORE_ID", "store-1")
    camera = env.get("DEEPLENS_CAMERA_ID", env.get("AWS_IOT_THING_NAME", "deeplens"))
    context = EdgeContext(
        store_id=store,
        camera_id=camera,
        zone=env.get("DEEPLENS_ZONE", "entrance"),
        every=int(env.get("DEEPLENS_EVERY", "2")),
    )
    detector = AwscamSSDDetector(
        model_path=env.get("DEEPLENS_MODEL_PATH", DEFAULT_MODEL_PATH),
        input_size=int(env.get("DEEPLENS_INPUT_SIZE", "300")),
        threshold=float(env.get("DEEPLENS_THRESHOLD", "0.5")),
    )
    pipeline = EdgePipeline(detector, context, gate=_gate(env))
    publisher = SpoolingPublisher(
        GreengrassTransport(),
        Spool(env.get("DEEPLENS_SPOOL", "/tmp/storelens-spool.db")),
        topic=topic_for(store, camera),
    )
    stream = ProjectStream(env.get("DEEPLENS_FIFO", FIFO_PATH))
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            ok, frame = awscam.getLastFrame()
            if not ok:
                log.warning("awscam.getLastFrame() failed; retrying")
                time.sleep(0.1)
                continue
            for event in pipeline.process(frame):
                publisher.publish(event)
            stream.set_frame(frame, pipeline.tracker.current_boxes())
    finally:
        for event in pipeline.flush():
            publisher.publish(event)
        publisher.close()
        stream.stop()


def _gate(env: Mapping[str, str]) -> UnmatchedGate | None:
    """``DEEPLENS_UNMATCHED=anonymous``: send crops only of consented customers (docs/edge.md).

    The gallery is the stack's object in ``DEEPLENS_GALLERY_BUCKET`` (the
    ``CropsBucketName`` output), read with boto3 and the Greengrass group role's
    credentials; the embedder is the local dlib/ONNX engine (it must be installed
    on the device), with ``DEEPLENS_SCRATCH`` as its scratch dir.
    """
    mode = env.get("DEEPLENS_UNMATCHED", "send")
    if mode == "send":
        return None
    from core.errors import SettingsError

    if mode != "anonymous":
        raise SettingsError(f"DEEPLENS_UNMATCHED={mode!r}: use 'send' or 'anonymous'")
    bucket = env.get("DEEPLENS_GALLERY_BUCKET", "")
    if not bucket:
        raise SettingsError(
            "DEEPLENS_UNMATCHED=anonymous needs DEEPLENS_GALLERY_BUCKET (the stack's CropsBucketName)"
        )
    from pathlib import Path

    from core.settings import Settings
    from deeplens_lambda.consent_gate import gate_for

    scratch = Path(env.get("DEEPLENS_SCRATCH", "/tmp/storelens-edge"))
    settings = Settings(
        backend="aws",
        data_dir=scratch,
        s3_bucket=bucket,
        aws_region=env.get("AWS_REGION", "eu-west-1"),
        match_threshold=float(env.get("DEEPLENS_MATCH_THRESHOLD", "0.55")),
    )
    return gate_for(settings, scratch_dir=scratch)


def function_handler(event: Any, context: Any) -> None:
    """Greengrass handler; a long-lived Lambda does its work in :func:`run`."""
    del event, context


def _autostart() -> None:
    if os.environ.get("DEEPLENS_AUTOSTART") == "1":
        threading.Thread(target=run, name="storelens-edge", daemon=True).start()


_autostart()
