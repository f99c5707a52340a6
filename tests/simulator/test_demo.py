"""The demo builder fills a fresh local backend through the real pipeline, and reruns safely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.bootstrap import Services
from simulator.demo import build_demo


def test_demo_builds_customers_visits_pending_and_sales(services: Services, tmp_path: Path) -> None:
    end = datetime(2026, 3, 9, tzinfo=UTC)
    steps: list[float] = []
    report = build_demo(
        services,
        days=6,
        end=end,
        workdir=tmp_path / "demo",
        progress=lambda fraction, _msg: steps.append(fraction),
    )
    assert not report.skipped and not report.stopped
    # one person per replay: a first event (~1 s in) and at most a final one with better crops
    assert report.events >= 6 and report.replays <= report.events <= 2 * report.replays
    names = {c.name for c in services.repos.customers.list()}
    assert "Barack Obama" in names  # enrolled
    assert report.approved and set(report.approved) <= names  # approved from the queue
    assert report.outcomes.get("visit", 0) >= 1 and report.outcomes.get("pending", 0) >= 1
    assert report.pending_left >= 1
    visits = services.repos.visits.between(end - timedelta(days=7), end)
    assert {v.zone for v in visits} >= {"entrance", "checkout"}
    assert report.transactions > 0 and report.linked_by_loyalty > 0
    assert steps[-1] == 1.0 and steps == sorted(steps)

    again = build_demo(services, days=6, end=end, workdir=tmp_path / "demo")
    assert again.skipped
    assert len(services.repos.visits.between(end - timedelta(days=7), end)) == len(visits)
