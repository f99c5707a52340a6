"""Synthetic store video: real face photos composited on a drawn store, moving.

>>> script = [Appearance("obama", start=0.5, duration=3.0, start_xy=(120, 240), end_xy=(520, 240))]
>>> clip = render_clip("/tmp/store.mp4", script, seconds=5.0)   # doctest: +SKIP
>>> clip.truth[10]                                               # doctest: +SKIP
[('obama', BoundingBox(...))]

Faces are drawn with their face box about ``face_px`` pixels tall (default
170) so the HOG detector finds them on a half-size frame.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.models import BoundingBox
from simulator.photos import photo

#: person -> (photo name, face box in that photo as left, top, width, height).
#: Boxes are dlib HOG detections (upsample 1) on the pinned photos.
PEOPLE: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "obama": ("obama", (349, 142, 269, 268)),
    "biden": ("biden", (419, 241, 322, 322)),
    "grace": ("grace_hopper", (180, 139, 187, 187)),
    "astronaut": ("astronaut", (175, 76, 91, 91)),
    "ana": ("t1", (1118, 283, 109, 108)),
    "ben": ("t1", (67, 283, 109, 108)),
    "chloe": ("t1", (724, 367, 109, 108)),
    "dev": ("t1", (870, 67, 130, 130)),
    "emma": ("t1", (454, 297, 130, 130)),
    "finn": ("t1", (275, 176, 90, 90)),
}

#: Extra photos of the same people (for enrolment with images the video does not use).
ALTERNATE_PHOTOS: dict[str, list[str]] = {"obama": ["obama2", "obama3"]}

SPRITE_MARGIN = 0.45  # head and hair around the face box


@dataclass(frozen=True, slots=True)
class Appearance:
    """One person crossing the frame: positions are the face centre in pixels."""

    person: str
    start: float  # seconds into the clip
    duration: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    face_px: int = 170

    def position(self, t: float) -> tuple[float, float] | None:
        if not self.start <= t < self.start + self.duration:
            return None
        a = (t - self.start) / self.duration
        return (
            self.start_xy[0] + a * (self.end_xy[0] - self.start_xy[0]),
            self.start_xy[1] + a * (self.end_xy[1] - self.start_xy[1]),
        )


@dataclass
class Clip:
    """A rendered clip and its ground truth (per frame: person and face box)."""

    path: Path
    fps: float
    width: int
    height: int
    frames: int
    truth: list[list[tuple[str, BoundingBox]]] = field(default_factory=list)

    @property
    def people(self) -> set[str]:
        return {name for boxes in self.truth for name, _ in boxes}


@dataclass(frozen=True)
class Sprite:
    """A head cut from a photo with a soft elliptical alpha, and where the face sits in it."""

    image: np.ndarray  # BGR float32
    alpha: np.ndarray  # H x W x 1 float32 0..1
    face: BoundingBox  # face box inside the sprite


@functools.lru_cache(maxsize=64)
def _photo_image(name: str) -> np.ndarray:
    img = cv2.imread(str(photo(name)), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"photo {name!r} does not decode")
    return img


@functools.lru_cache(maxsize=256)
def sprite(person: str, face_px: int = 170) -> Sprite:
    """The sprite of ``person`` scaled so the face box is ``face_px`` tall."""
    name, (x, y, w, h) = PEOPLE[person]
    img = _photo_image(name)
    face = BoundingBox(x, y, w, h)
    region = face.expand(SPRITE_MARGIN).clip(img.shape[1], img.shape[0])
    cut = img[region.top : region.bottom, region.left : region.right]
    scale = face_px / float(h)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    cut = cv2.resize(cut, None, fx=scale, fy=scale, interpolation=interpolation)
    sh, sw = cut.shape[:2]
    mask: np.ndarray = np.zeros((sh, sw), np.float32)
    cv2.ellipse(mask, (sw // 2, sh // 2), (int(sw * 0.46), int(sh * 0.49)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, sw * 0.03))
    inner = BoundingBox(
        round((x - region.left) * scale), round((y - region.top) * scale), round(w * scale), round(h * scale)
    )
    return Sprite(cut.astype(np.float32), mask[..., None], inner)


@functools.lru_cache(maxsize=8)
def store_background(width: int = 640, height: int = 480, seed: int = 3) -> np.ndarray:
    """A drawn store aisle: wall, shelves with products, floor."""
    rng = random.Random(seed)
    img = np.zeros((height, width, 3), np.uint8)
    for row in range(height):  # wall-to-floor gradient
        shade = 200 - int(60 * row / height)
        img[row, :] = (shade - 10, shade, shade + 8)
    floor = int(height * 0.72)
    img[floor:, :] = (120, 130, 140)
    for x in range(0, width, 80):
        cv2.line(img, (x, floor), (x + (x - width // 2) // 3, height), (105, 115, 125), 1)
    for shelf_y in (int(height * 0.18), int(height * 0.38), int(height * 0.58)):
        cv2.rectangle(img, (0, shelf_y), (width, shelf_y + 8), (70, 80, 90), -1)
        x = 4
        while x < width - 10:
            w = rng.randint(14, 34)
            h = rng.randint(28, 60)
            color = (rng.randint(40, 230), rng.randint(40, 230), rng.randint(40, 230))
            cv2.rectangle(img, (x, shelf_y - h), (x + w, shelf_y - 1), color, -1)
            x += w + rng.randint(2, 6)
    return img


def compose(
    background: np.ndarray, people: Iterable[tuple[str, tuple[float, float], int]]
) -> tuple[np.ndarray, list[tuple[str, BoundingBox]]]:
    """Paste each (person, face centre, face_px) onto a copy of ``background``."""
    frame = background.copy()
    height, width = frame.shape[:2]
    boxes: list[tuple[str, BoundingBox]] = []
    for person, (cx, cy), face_px in people:
        sp = sprite(person, face_px)
        fx, fy = sp.face.center
        left = round(cx - fx)
        top = round(cy - fy)
        sh, sw = sp.image.shape[:2]
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, left + sw), min(height, top + sh)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        src = sp.image[y0 - top : y1 - top, x0 - left : x1 - left]
        a = sp.alpha[y0 - top : y1 - top, x0 - left : x1 - left]
        frame[y0:y1, x0:x1] = (src * a + roi * (1.0 - a)).astype(np.uint8)
        face = BoundingBox(left + sp.face.left, top + sp.face.top, sp.face.width, sp.face.height)
        visible = face.clip(width, height)
        if visible.area >= 0.6 * face.area:
            boxes.append((person, visible))
    return frame, boxes


def render_clip(
    path: str | Path,
    script: list[Appearance],
    *,
    seconds: float | None = None,
    fps: float = 15.0,
    width: int = 640,
    height: int = 480,
) -> Clip:
    """Render ``script`` to an MPEG-4 file at ``path``; return it with per-frame ground truth."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    total = seconds if seconds is not None else max((a.start + a.duration for a in script), default=1.0) + 0.5
    n = round(total * fps)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open a video writer for {out}")
    bg = store_background(width, height)
    clip = Clip(out, fps, width, height, n)
    try:
        for i in range(n):
            t = i / fps
            active = [(a.person, pos, a.face_px) for a in script if (pos := a.position(t)) is not None]
            frame, boxes = compose(bg, active)
            writer.write(frame)
            clip.truth.append(boxes)
    finally:
        writer.release()
    return clip


def walk_script(
    people: list[str],
    *,
    gap: float = 1.0,
    duration: float = 3.5,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    start: float = 0.5,
) -> list[Appearance]:
    """Each person walks across the whole frame in turn, alternating direction."""
    rng = random.Random(seed)
    script = []
    t = start
    for i, person in enumerate(people):
        y = height * rng.uniform(0.42, 0.55)
        xs = (width * -0.12, width * 1.12)  # walk in from one edge and out at the other
        if i % 2:
            xs = xs[::-1]
        script.append(
            Appearance(
                person,
                t,
                duration,
                (xs[0], y),
                (xs[1], y + rng.uniform(-15, 15)),
                face_px=rng.randint(165, 185),
            )
        )
        t += duration + gap
    return script
