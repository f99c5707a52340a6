"""The store layout: cameras, zones and their polygons on a floor-plan image.

The one reader of ``config/store.toml``: the edge agent
(:mod:`deeplens_lambda.config`), analytics and the dashboard pages all use it.

The file format (TOML, see ``config/store.toml`` and ``docs/edge.md``)::

    store_id = "store-1"
    floor_plan = "floorplan.png"      # relative to the TOML file
    plan_width = 800
    plan_height = 500
    [[zones]]   id, name, polygon = [[x, y], ...]   (floor-plan pixels)
    [[cameras]] id, zone, source, detector = "yunet", every = 3, checkout = false,
                position = [x, y], min_face_px = 40, crops_per_track = 5

>>> cfg = load_store_config()                      # config/store.toml
>>> cfg.camera("cam-checkout").zone
'checkout'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SettingsError
from core.settings import PROJECT_DIR

#: The layout the demo store ships with.
DEFAULT_CONFIG = PROJECT_DIR / "config" / "store.toml"


@dataclass(frozen=True, slots=True)
class Zone:
    """An area of the store, as a polygon on the floor plan."""

    zone_id: str
    name: str
    polygon: tuple[tuple[int, int], ...]

    def contains(self, x: float, y: float) -> bool:
        """Whether the floor-plan point lies inside the polygon (ray casting)."""
        inside = False
        pts = self.polygon
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / ((yj - yi) or 1e-9) + xi:
                inside = not inside
            j = i
        return inside

    @property
    def centroid(self) -> tuple[float, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return (sum(xs) / len(xs), sum(ys) / len(ys))


@dataclass(frozen=True, slots=True)
class Camera:
    """A camera and the zone it covers."""

    camera_id: str
    zone: str
    source: str = "0"
    detector: str = "yunet"
    every: int = 3
    checkout: bool = False
    position: tuple[int, int] | None = None
    #: smallest face to find, camera pixels (None: ``STORELENS_MIN_FACE_PX``, default 40)
    min_face_px: int | None = None
    #: crops sent per track (None: ``STORELENS_CROPS_PER_TRACK``, default 5)
    crops_per_track: int | None = None


@dataclass(frozen=True)
class StoreConfig:
    """A store's cameras, zones and floor plan."""

    store_id: str
    name: str
    floor_plan: Path
    plan_width: int
    plan_height: int
    zones: tuple[Zone, ...] = field(default_factory=tuple)
    cameras: tuple[Camera, ...] = field(default_factory=tuple)

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.zone_id == zone_id:
                return z
        raise KeyError(zone_id)

    def camera(self, camera_id: str) -> Camera:
        for c in self.cameras:
            if c.camera_id == camera_id:
                return c
        raise KeyError(camera_id)

    @property
    def checkout_cameras(self) -> list[str]:
        return [c.camera_id for c in self.cameras if c.checkout]


def load_store_config(path: str | Path | None = None) -> StoreConfig:
    """Read and validate a store TOML file (default ``config/store.toml``).

    Raises :class:`core.errors.SettingsError` naming the problem.
    """
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read store config {file}: {exc}") from exc
    return parse_store_config(data, base_dir=file.parent)


def parse_store_config(data: dict[str, Any], base_dir: Path = Path(".")) -> StoreConfig:
    """Build a :class:`StoreConfig` from already-parsed TOML data."""
    known = {"store_id", "name", "floor_plan", "plan_width", "plan_height", "zones", "cameras"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"unknown store config key(s): {', '.join(unknown)}")
    zones = []
    for raw in data.get("zones", []):
        poly = tuple((int(p[0]), int(p[1])) for p in raw.get("polygon", []))
        if len(poly) < 3:
            raise SettingsError(f"zone {raw.get('id')!r} needs a polygon of at least 3 points")
        zones.append(Zone(str(raw["id"]), str(raw.get("name", raw["id"])), poly))
    ids = {z.zone_id for z in zones}
    cameras = []
    camera_keys = {"id", "zone", "source", "detector", "every", "checkout", "position", "min_face_px"}
    camera_keys |= {"crops_per_track"}
    for raw in data.get("cameras", []):
        extra = sorted(set(raw) - camera_keys)
        if extra:
            raise SettingsError(f"camera {raw.get('id')!r}: unknown key(s): {', '.join(extra)}")
        if raw.get("zone") not in ids:
            raise SettingsError(f"camera {raw.get('id')!r} covers unknown zone {raw.get('zone')!r}")
        pos = raw.get("position")
        cameras.append(
            Camera(
                str(raw["id"]),
                str(raw["zone"]),
                str(raw.get("source", "0")),
                str(raw.get("detector", "yunet")),
                int(raw.get("every", 3)),
                bool(raw.get("checkout", False)),
                (int(pos[0]), int(pos[1])) if pos else None,
                int(raw["min_face_px"]) if "min_face_px" in raw else None,
                int(raw["crops_per_track"]) if "crops_per_track" in raw else None,
            )
        )
    return StoreConfig(
        store_id=str(data.get("store_id", "store-1")),
        name=str(data.get("name", data.get("store_id", "store"))),
        floor_plan=(base_dir / str(data.get("floor_plan", "floorplan.png"))).resolve(),
        plan_width=int(data.get("plan_width", 800)),
        plan_height=int(data.get("plan_height", 500)),
        zones=tuple(zones),
        cameras=tuple(cameras),
    )


# ------------------------------------------------------------------ dashboard view


@dataclass(frozen=True, slots=True)
class ZoneShape:
    """A store zone as a polygon in floor-plan pixels (origin top-left)."""

    zone_id: str
    name: str
    polygon: tuple[tuple[float, float], ...]

    @property
    def centroid(self) -> tuple[float, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return (sum(xs) / len(xs), sum(ys) / len(ys))


@dataclass(frozen=True, slots=True)
class FloorPlan:
    """The store layout from ``config/store.toml``: image, zones and camera positions."""

    image: Path | None
    width: int
    height: int
    zones: tuple[ZoneShape, ...]
    cameras: dict[str, tuple[float, float]]


def load_floor_plan(path: Path | None = None) -> FloorPlan | None:
    """The dashboard's view of the layout (``config/store.toml`` by default); ``None`` if there is none.

    >>> load_floor_plan(Path("/nonexistent.toml")) is None
    True
    """
    file = path or DEFAULT_CONFIG
    if not file.exists():
        return None
    config = load_store_config(file)
    return FloorPlan(
        image=config.floor_plan if config.floor_plan.exists() else None,
        width=config.plan_width,
        height=config.plan_height,
        zones=tuple(
            ZoneShape(z.zone_id, z.name, tuple((float(x), float(y)) for x, y in z.polygon))
            for z in config.zones
        ),
        cameras={
            c.camera_id: (float(c.position[0]), float(c.position[1])) for c in config.cameras if c.position
        },
    )


__all__ = [
    "DEFAULT_CONFIG",
    "Camera",
    "FloorPlan",
    "StoreConfig",
    "Zone",
    "ZoneShape",
    "load_floor_plan",
    "load_store_config",
    "parse_store_config",
]
