"""Build a face detector by name (``yunet``, ``hog``, ``mxnet``, ``awscam``).

Kept apart from :mod:`deeplens_lambda.detectors` because it names every
implementation, including the device one, which itself uses the pure parsing
in ``detectors``; here nothing imports back.

>>> det = create_detector("yunet", min_face_px=40)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deeplens_lambda.detectors import DEFAULT_DETECTOR, Detector, DlibHogDetector, YuNetDetector

DETECTORS = ("yunet", "hog", "mxnet", "awscam")


def _only(options: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in names and v is not None}


def create_detector(name: str = DEFAULT_DETECTOR, **options: Any) -> Detector:
    """Build a detector by name; unknown names raise ``ValueError`` naming the allowed ones.

    ``yunet`` and ``hog`` drop options they do not take, so callers can pass
    the common ones (``min_face_px``, ``downscale``) whatever the detector.
    ``yunet`` raises :class:`deeplens_lambda.detectors.DetectorUnavailableError`
    (naming the ``hog`` fallback) where ``yuface`` cannot be imported.
    """
    if name == "yunet":
        return YuNetDetector(**_only(options, "min_face_px", "threshold", "scale"))
    if name == "hog":
        return DlibHogDetector(**_only(options, "downscale", "upsample", "min_score"))
    if name == "mxnet":
        from deeplens_lambda.mxnet_ssd import MXNetSSDDetector

        return MXNetSSDDetector(**options)
    if name == "awscam":
        from deeplens_lambda.device import AwscamSSDDetector

        return AwscamSSDDetector(**options)
    raise ValueError(f"unknown detector {name!r}; use one of: {', '.join(DETECTORS)}")


__all__ = ["DETECTORS", "create_detector"]
