"""Clips rendered once per test session from the packaged face photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.synth import Clip, render_clip, walk_script


@pytest.fixture(scope="session")
def three_people_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """obama, biden and grace walk through the frame one after another (15 fps, ~13 s)."""
    path = tmp_path_factory.mktemp("clips") / "three.mp4"
    return render_clip(path, walk_script(["obama", "biden", "grace"], seed=1))


@pytest.fixture(scope="session")
def many_events_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight crossings, for transport tests that need a stream of events."""
    path = tmp_path_factory.mktemp("clips") / "eight.mp4"
    people = ["obama", "biden", "grace", "astronaut", "ana", "dev", "emma", "ben"]
    return render_clip(path, walk_script(people, duration=2.2, gap=1.0, seed=2)).path
