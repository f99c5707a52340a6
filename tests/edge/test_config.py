"""The store config (cameras, zones, floor plan) loads, validates and draws."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from core.errors import SettingsError
from deeplens_lambda.config import draw_floor_plan, load_store_config, parse_store_config


def test_shipped_config_is_consistent() -> None:
    cfg = load_store_config()
    assert cfg.floor_plan.exists()
    img = cv2.imread(str(cfg.floor_plan))
    assert img.shape[:2] == (cfg.plan_height, cfg.plan_width)
    zone_ids = {z.zone_id for z in cfg.zones}
    assert {c.zone for c in cfg.cameras} <= zone_ids
    assert cfg.checkout_cameras == ["cam-checkout"]
    assert cfg.zone("entrance").contains(100, 420)
    assert not cfg.zone("entrance").contains(400, 100)
    assert cfg.zone("checkout").contains(700, 300) and cfg.zone("checkout").contains(400, 450)


def test_draw_floor_plan(tmp_path: Path) -> None:
    out = draw_floor_plan(load_store_config(), tmp_path / "plan.png")
    assert cv2.imread(str(out)).shape == (500, 800, 3)


def test_bad_configs_are_rejected() -> None:
    zone = {"id": "a", "polygon": [[0, 0], [10, 0], [10, 10]]}
    with pytest.raises(SettingsError, match="unknown store config key"):
        parse_store_config({"zonez": []})
    with pytest.raises(SettingsError, match="at least 3 points"):
        parse_store_config({"zones": [{"id": "a", "polygon": [[0, 0], [1, 1]]}]})
    with pytest.raises(SettingsError, match="unknown zone 'b'"):
        parse_store_config({"zones": [zone], "cameras": [{"id": "c", "zone": "b"}]})
    with pytest.raises(SettingsError, match="cannot read"):
        load_store_config("/nonexistent/store.toml")


def test_camera_edge_settings() -> None:
    cam = load_store_config().camera("cam-entrance")
    assert cam.detector == "yunet" and cam.min_face_px == 40 and cam.crops_per_track == 5
    zone = {"id": "a", "polygon": [[0, 0], [10, 0], [10, 10]]}
    cfg = parse_store_config({"zones": [zone], "cameras": [{"id": "c", "zone": "a"}]})
    assert cfg.camera("c").detector == "yunet" and cfg.camera("c").min_face_px is None
    with pytest.raises(SettingsError, match="unknown key"):
        parse_store_config({"zones": [zone], "cameras": [{"id": "c", "zone": "a", "min_face": 30}]})
