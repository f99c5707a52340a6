"""Frame sources on the real walkway clip: PyAV (skipping frames nobody needs) against OpenCV."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from simulator.sources import AvFileSource, FrameSource, open_source

CLIP = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "walkway" / "walkway-1080p.mp4"


def _every_third(index: int) -> bool:
    return index % 3 == 0


def test_pyav_gives_opencvs_frames_and_skips_decoding_unneeded_ones() -> None:
    source = open_source(CLIP)
    assert isinstance(source, AvFileSource)
    assert (source.width, source.height, source.fps, source.frame_count) == (1920, 1080, 25.0, 105)
    try:
        got = list(source.sparse_frames(_every_third))
    finally:
        source.close()
    capture = cv2.VideoCapture(str(CLIP))
    reference = FrameSource(str(CLIP), capture, 25.0, None, False, 1920, 1080)
    try:
        expected = list(reference.sparse_frames(_every_third))
    finally:
        reference.close()
    assert len(got) == len(expected) == 105
    for index, ((frame, position), (ref, ref_position)) in enumerate(zip(got, expected, strict=True)):
        assert position == pytest.approx(ref_position) == pytest.approx(index / 25.0)
        if index % 3:
            assert frame is None and ref is None
        else:
            assert frame is not None and ref is not None
            assert np.array_equal(frame, ref)  # the same decoder, the same pixels
    # The clip has B-frames that no other frame refers to: those not wanted are never decoded.
    assert 60 <= source.decoded <= 80


def test_every_frame_when_all_are_wanted() -> None:
    source = open_source(CLIP)
    try:
        frames = [frame for frame, _ in source.sparse_frames(None)]
    finally:
        source.close()
    assert len(frames) == 105 and all(f is not None and f.shape == (1080, 1920, 3) for f in frames)


def test_without_pyav_files_are_read_with_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_av(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "av":
            raise ImportError("no av here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    source = open_source(CLIP)
    try:
        assert isinstance(source, FrameSource)
        assert sum(1 for _ in source.sparse_frames(_every_third)) == 105
    finally:
        source.close()


def test_a_missing_file_is_reported() -> None:
    with pytest.raises(FileNotFoundError):
        open_source(CLIP.with_name("no-such-clip.mp4"))
