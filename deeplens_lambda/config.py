"""Store layout for the edge: cameras, zones and the floor-plan drawing.

The layout itself (``config/store.toml``) is read by :mod:`core.store_layout`
(one parser for the edge, analytics and the dashboard); this module re-exports
it for edge code and draws the floor-plan image.

>>> cfg = load_store_config()                      # config/store.toml
>>> cfg.camera("cam-checkout").zone
'checkout'
"""

from __future__ import annotations

from pathlib import Path

from core.store_layout import (
    DEFAULT_CONFIG,
    Camera,
    StoreConfig,
    Zone,
    load_store_config,
    parse_store_config,
)


def draw_floor_plan(config: StoreConfig, path: str | Path | None = None) -> Path:
    """Draw a simple floor plan PNG (zones, names, cameras) and return its path."""
    import cv2
    import numpy as np

    out = Path(path) if path else config.floor_plan
    img = np.full((config.plan_height, config.plan_width, 3), 245, np.uint8)
    palette = [(214, 232, 250), (210, 240, 214), (240, 226, 206), (232, 214, 240), (206, 236, 240)]
    for i, zone in enumerate(config.zones):
        pts = np.array(zone.polygon, np.int32)
        cv2.fillPoly(img, [pts], palette[i % len(palette)])
        cv2.polylines(img, [pts], True, (90, 90, 90), 2)
        cx, cy = zone.centroid
        cv2.putText(
            img,
            zone.name,
            (int(cx) - 6 * len(zone.name), int(cy)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (40, 40, 40),
            1,
            cv2.LINE_AA,
        )
    for cam in config.cameras:
        if cam.position:
            cv2.circle(img, cam.position, 8, (30, 30, 200), -1)
            (tw, _), _ = cv2.getTextSize(cam.camera_id, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            x = cam.position[0] + 10
            if x + tw > config.plan_width - 6:  # keep the label inside the plan
                x = cam.position[0] - 10 - tw
            cv2.putText(
                img,
                cam.camera_id,
                (x, max(12, cam.position[1] - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (30, 30, 200),
                1,
                cv2.LINE_AA,
            )
    cv2.rectangle(img, (2, 2), (config.plan_width - 3, config.plan_height - 3), (60, 60, 60), 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img)
    return out


__all__ = [
    "DEFAULT_CONFIG",
    "Camera",
    "StoreConfig",
    "Zone",
    "draw_floor_plan",
    "load_store_config",
    "parse_store_config",
]
