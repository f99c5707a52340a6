"""Every deeplens_lambda module imports off the device without touching the device SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]
DEVICE_SDKS = ("awscam", "mo", "greengrasssdk")


def test_every_module_imports_without_device_sdks() -> None:
    # A fresh interpreter, so nothing imported by other tests hides a leak.
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import deeplens_lambda\n"
        "prefix = 'deeplens_lambda.'\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(deeplens_lambda.__path__, prefix))\n"
        "for n in names: importlib.import_module(n)\n"
        f"leaked = [m for m in {DEVICE_SDKS!r} if m in sys.modules]\n"
        "print(json.dumps({'modules': names, 'leaked': leaked}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    assert {
        "deeplens_lambda.device",
        "deeplens_lambda.pipeline",
        "deeplens_lambda.tracker",
        "deeplens_lambda.publishers",
        "deeplens_lambda.spool",
        "deeplens_lambda.detectors",
        "deeplens_lambda.detector_factory",
        "deeplens_lambda.mxnet_ssd",
        "deeplens_lambda.config",
    } <= set(result["modules"])


def test_device_only_parts_fail_clearly_off_the_device() -> None:
    from deeplens_lambda.detector_factory import create_detector
    from deeplens_lambda.device import GreengrassTransport

    with pytest.raises(MissingDependencyError, match="DeepLens"):
        create_detector("awscam")
    with pytest.raises(MissingDependencyError, match="greengrasssdk"):
        GreengrassTransport()
    for name in DEVICE_SDKS:
        assert name not in sys.modules


def test_unknown_detector_names_the_allowed_ones() -> None:
    from deeplens_lambda.detector_factory import create_detector

    with pytest.raises(ValueError, match="hog, mxnet, awscam"):
        create_detector("yolo")
