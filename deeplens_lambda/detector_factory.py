"""Build a face detector by name (``hog``, ``mxnet``, ``awscam``).

Kept apart from :mod:`deeplens_lambda.detectors` because it names every
implementation, including the device one, which itself uses the pure parsing
in ``detectors``; here nothing imports back.

>>> det = create_detector("hog", downscale=0.5)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from deeplens_lambda.detectors import Detector, DlibHogDetector

DETECTORS = ("hog", "mxnet", "awscam")


def create_detector(name: str = "hog", **options: Any) -> Detector:
    """Build a detector by name; unknown names raise ``ValueError`` naming the allowed ones."""
    if name == "hog":
        return DlibHogDetector(**options)
    if name == "mxnet":
        from deeplens_lambda.mxnet_ssd import MXNetSSDDetector

        return MXNetSSDDetector(**options)
    if name == "awscam":
        from deeplens_lambda.device import AwscamSSDDetector

        return AwscamSSDDetector(**options)
    raise ValueError(f"unknown detector {name!r}; use one of: {', '.join(DETECTORS)}")


__all__ = ["DETECTORS", "create_detector"]
