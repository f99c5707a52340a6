"""Frame sources for the simulator: a video file, an RTSP URL or a webcam index.

Files are decoded with PyAV (FFmpeg) where it is installed: frames the caller
does not want (those the detector skips) are then not decoded at all when no
other frame refers to them (FFmpeg's ``skip_frame``), which saves about a
third of the decoding of a typical H.264 file with B-frames. Without PyAV, and
for live sources, ``cv2.VideoCapture`` decodes every frame.
"""

from __future__ import annotations

import bisect
import collections
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: Packets read ahead of the one being decoded: enough to know a packet's place
#: in display order before decoding it (H.264 reorders at most 16 frames).
REORDER_WINDOW = 16


class VideoSource(Protocol):
    """What the replay needs of a frame source."""

    source: str
    fps: float
    frame_count: int | None
    live: bool
    width: int
    height: int

    def sparse_frames(
        self, wanted: Callable[[int], bool] | None
    ) -> Iterator[tuple[np.ndarray | None, float]]:
        """Every frame's position in seconds; BGR pixels only where ``wanted(index)``."""

    def close(self) -> None:
        """Release the decoder."""


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


@dataclass
class AvFileSource:
    """A video file decoded with PyAV, skipping unwanted frames that no other frame needs.

    Frames come out in display order with ``index / fps`` as their position, as
    from :class:`FrameSource`. Each packet's display index is its rank among
    the timestamps of the packets read so far (read :data:`REORDER_WINDOW`
    ahead), so it is known before the packet is decoded and FFmpeg can be told
    to skip it (``skip_frame = NONREF``) when it is not wanted.
    """

    source: str
    container: Any
    stream: Any
    fps: float
    frame_count: int | None
    width: int
    height: int
    live: bool = False
    decoded: int = field(default=0, init=False)  # frames FFmpeg actually decoded (the bench prints it)

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """Every frame with its position in seconds."""
        for frame, position in self.sparse_frames(None):
            assert frame is not None
            yield frame, position

    def sparse_frames(
        self, wanted: Callable[[int], bool] | None
    ) -> Iterator[tuple[np.ndarray | None, float]]:
        """Every frame's position; the pixels only where ``wanted(index)`` (all if ``None``)."""
        codec = self.stream.codec_context
        order: list[int] = []  # timestamps of the packets read so far, sorted
        ahead: collections.deque[tuple[Any, int]] = collections.deque()
        ready: dict[int, np.ndarray | None] = {}  # display index -> pixels (None: not wanted)
        serial = 0
        following = 0

        def want(index: int) -> bool:
            return wanted is None or wanted(index)

        def decode(packet: Any) -> None:
            for frame in packet.decode() if packet is not None else self.stream.decode(None):
                self.decoded += 1
                if frame.pts is None:
                    continue
                index = bisect.bisect_left(order, frame.pts)
                if want(index) and ready.get(index) is None:
                    ready[index] = frame.to_ndarray(format="bgr24")

        def emit() -> Iterator[tuple[np.ndarray | None, float]]:
            nonlocal following
            while following in ready and (ready[following] is not None or not want(following)):
                yield ready.pop(following), following / self.fps
                following += 1

        def step(packet: Any, stamp: int) -> Iterator[tuple[np.ndarray | None, float]]:
            index = bisect.bisect_left(order, stamp)
            keep = want(index)
            codec.skip_frame = "DEFAULT" if keep else "NONREF"
            if not keep:
                ready[index] = None
            decode(packet)
            yield from emit()

        for packet in self.container.demux(self.stream):
            if not packet.size:  # the empty packet that ends the stream
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            stamp = serial if stamp is None else stamp
            serial += 1
            bisect.insort(order, stamp)
            ahead.append((packet, stamp))
            if len(ahead) > REORDER_WINDOW:
                yield from step(*ahead.popleft())
        while ahead:
            yield from step(*ahead.popleft())
        codec.skip_frame = "DEFAULT"
        decode(None)  # drain the frames the decoder still holds
        yield from emit()

    def close(self) -> None:
        self.container.close()


def _open_with_pyav(path: str) -> AvFileSource | None:
    """The file through PyAV, or None when PyAV is not installed or cannot read it."""
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError):
        return None
    if not container.streams.video:
        container.close()
        return None
    stream = container.streams.video[0]
    # One core (a pinned replay): FFmpeg's own threads would only take turns with the detector.
    one_core = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1
    stream.thread_type = "NONE" if one_core else "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if not 1.0 <= fps <= 240.0:
        fps = 15.0
    count = int(stream.frames or 0)
    return AvFileSource(
        source=path,
        container=container,
        stream=stream,
        fps=fps,
        frame_count=count if count > 0 else None,
        width=int(stream.codec_context.width or 0),
        height=int(stream.codec_context.height or 0),
    )


def open_source(source: str | int | Path) -> VideoSource:
    """Open ``source``: an existing file, ``rtsp://``/``http://`` URL, or a webcam index like ``0``.

    Files go through PyAV where it is installed (see :class:`AvFileSource`),
    everything else through ``cv2.VideoCapture``. Raises ``FileNotFoundError``
    for a missing file and ``OSError`` if the source cannot be opened.
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
        opened = _open_with_pyav(text)
        if opened is not None:
            return opened
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
