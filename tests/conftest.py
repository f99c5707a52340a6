"""Shared fixtures: real services on a temporary data dir, real face models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import Services, build_services
from core.settings import Settings

TEST_SECRET = "test-secret-do-not-use"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings isolated from the developer's environment (no os.environ)."""
    return Settings.from_env({}, data_dir=data_dir, secret_key=TEST_SECRET, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The embedded local backend with the real dlib engine, on a tmp dir."""
    svc = build_services(settings)
    yield svc
    svc.close()
