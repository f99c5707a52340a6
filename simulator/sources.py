"""Frame sources for the simulator: a video file, an RTSP URL or a webcam index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class FrameSource:
    """Frames from ``cv2.VideoCapture`` with their position in seconds.

    For files, positions come from the frame index and the file's frame rate
    (so ``--speed max`` keeps the recording's timeline); for live sources
    (RTSP, webcam) ``live`` is true and callers stamp frames with the clock.
    """

    source: str
    capture: Any
    fps: float
    frame_count: int | None
    live: bool
    width: int
    height: int

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """Every frame with its position in seconds."""
        for frame, position in self.sparse_frames(None):
            assert frame is not None
            yield frame, position

    def sparse_frames(
        self, wanted: Callable[[int], bool] | None
    ) -> Iterator[tuple[np.ndarray | None, float]]:
        """Every frame's position; the pixels only where ``wanted(index)`` (all if ``None``).

        A video decoder must decode every frame, but converting it to BGR costs
        ~20 % of decoding a 1080p frame, so frames nobody looks at (those the
        detector skips) are only grabbed.
        """
        index = 0
        while True:
            if wanted is None or wanted(index):
                ok, frame = self.capture.read()
                if not ok or frame is None:
                    return
                yield frame, index / self.fps
            else:
                if not self.capture.grab():
                    return
                yield None, index / self.fps
            index += 1

    def close(self) -> None:
        self.capture.release()


def open_source(source: str | int | Path) -> FrameSource:
    """Open ``source``: an existing file, ``rtsp://``/``http://`` URL, or a webcam index like ``0``.

    Raises ``FileNotFoundError`` for a missing file and ``OSError`` if OpenCV
    cannot open the source.
    """
    import cv2

    text = str(source)
    live = True
    target: str | int
    if isinstance(source, int) or text.isdigit():
        target = int(text)
    elif "://" in text:
        target = text
    else:
        if not Path(text).exists():
            raise FileNotFoundError(f"no such video file: {text}")
        target = text
        live = False
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        raise OSError(f"OpenCV cannot open video source {text!r}")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not 1.0 <= fps <= 240.0:
        fps = 15.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return FrameSource(
        source=text,
        capture=capture,
        fps=fps,
        frame_count=count if count > 0 and not live else None,
        live=live,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )
