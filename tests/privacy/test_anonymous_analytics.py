"""Anonymous visitors in the analytics, on both backends, and on the Analytics page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.analytics_types import AnalyticsFilter
from core.anonymous_analytics import ANONYMOUS, KNOWN, anonymous_counts, footfall_mix
from core.bootstrap import Services
from core.models import ROLLUP_PREFIX, AnonymousSighting, Visit, new_id, utcnow
from tests.privacy.test_aws_consent_first import aws_services  # noqa: F401  (fixture)
from tests.privacy.test_pages import ADMIN, app, no_exception, store  # noqa: F401  (fixture)
from tests.privacy.test_retention import svc  # noqa: F401  (fixture)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_anonymous_counts_by_day_hour_zone_and_camera(svc: Services) -> None:  # noqa: F811
    rows = [
        AnonymousSighting(
            "anon_1", "store-1", "cam-a", "entrance", _at(2, 9), _at(2, 9) + timedelta(seconds=60)
        ),
        AnonymousSighting("anon_2", "store-1", "cam-a", "entrance", _at(2, 9, 30), _at(2, 9, 30)),
        AnonymousSighting("anon_3", "store-1", "cam-b", "checkout", _at(3, 23, 30), _at(3, 23, 32)),
        # An hourly roll-up of 4 people with a mean dwell of 30 s.
        AnonymousSighting(
            f"{ROLLUP_PREFIX}x",
            "store-1",
            "cam-a",
            "entrance",
            _at(3, 10),
            _at(3, 10) + timedelta(seconds=30),
            4,
        ),
        AnonymousSighting("anon_4", "store-1", "cam-a", "entrance", _at(9, 9), _at(9, 9)),  # outside
    ]
    for r in rows:
        svc.repos.anonymous.add(r)
    counts = anonymous_counts(svc.repos, AnalyticsFilter(date(2026, 11, 2), date(2026, 11, 3)))
    assert counts.people == 7
    assert counts.per_day.to_dict("list") == {"day": ["2026-11-02", "2026-11-03"], "people": [2, 5]}
    assert dict(zip(counts.per_hour["hour"], counts.per_hour["people"], strict=True)) == {9: 2, 10: 4, 23: 1}
    zones = counts.per_zone.set_index("zone")
    assert zones.loc["entrance", "people"] == 6 and zones.loc["checkout", "people"] == 1
    assert zones.loc["entrance", "avg_dwell_s"] == pytest.approx((60 + 0 + 4 * 30) / 6)
    assert counts.avg_dwell_s == pytest.approx((60 + 120 + 120) / 7)
    # Cameras filter, and the store's time zone moves 23:30 UTC into the next day.
    only_b = anonymous_counts(
        svc.repos, AnalyticsFilter(date(2026, 11, 2), date(2026, 11, 4), ("cam-b",), "Europe/Madrid")
    )
    assert only_b.per_day.to_dict("list") == {"day": ["2026-11-04"], "people": [1]}
    assert only_b.per_hour.to_dict("list") == {"hour": [0], "people": [1]}


def test_footfall_mix_labels_both_kinds() -> None:
    import pandas as pd

    known = pd.DataFrame({"day": ["2026-11-02", "2026-11-03"], "store_visits": [3, 0]})
    anon = pd.DataFrame({"day": ["2026-11-03"], "people": [5]})
    mixed = footfall_mix(known, anon, "day", "store_visits")
    assert mixed.to_dict("records") == [
        {"day": "2026-11-02", "kind": KNOWN, "people": 3},
        {"day": "2026-11-03", "kind": ANONYMOUS, "people": 5},
        {"day": "2026-11-03", "kind": KNOWN, "people": 0},
    ]


def test_analytics_page_shows_anonymous_visitors_next_to_known_customers(store: Services) -> None:  # noqa: F811
    from tests.privacy.conftest import enrol

    now = utcnow()
    barack = enrol(store, "Barack", "obama")
    store.repos.visits.add(Visit(new_id("vis"), barack.customer_id, "store-1", "cam-1", "entrance", now, now))
    for i in range(3):
        t = now - timedelta(minutes=5 * i)
        store.repos.anonymous.add(
            AnonymousSighting(f"anon_{i}", "store-1", "cam-1", "checkout", t, t + timedelta(minutes=2))
        )
    at = app(ADMIN).run()
    at.switch_page("pages/analytics.py").run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Anonymous visitors"] == "3"
    assert metrics["Known customers (store visits)"] == "1"
    assert metrics["People counted"] == "4"
    assert metrics["Anonymous dwell (min, mean)"] == "2.0"
    assert any(s.value == "Everyone counted" for s in at.subheader)


def test_events_of_one_camera_track_make_one_anonymous_sighting(svc: Services) -> None:  # noqa: F811
    from core.models import FaceEvent, IngestOutcome
    from tests.support.events import make_event
    from tests.support.photos import photo_bytes

    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    first = make_event(photo_bytes("biden"), captured_at=t0, track_id="cam-entrance-r1-7")
    later = make_event(
        photo_bytes("biden"), captured_at=t0 + timedelta(seconds=6), track_id="cam-entrance-r1-7"
    )
    # The same track's end, as an edge with unmatched = "anonymous" would send it.
    end = FaceEvent.anonymous(
        event_id="6f1c7a52-3c4e-4b1e-9a0d-2b7f61e0c001",
        store_id="store-1",
        camera_id="cam-entrance",
        zone="entrance",
        frame_width=640,
        frame_height=480,
        detector="yunet",
        track_id="cam-entrance-r1-7",
        first_seen_at=t0 - timedelta(seconds=1),
        last_seen_at=t0 + timedelta(seconds=9),
    )
    other = make_event(
        photo_bytes("biden"), captured_at=t0 + timedelta(seconds=3), track_id="cam-entrance-r1-8"
    )
    for event in (first, later, end, other):
        assert svc.ingest.ingest(event).outcome is IngestOutcome.ANONYMOUS
    assert svc.ingest.ingest(end).outcome is IngestOutcome.DUPLICATE
    sightings = svc.repos.anonymous.between(t0 - timedelta(minutes=1), t0 + timedelta(minutes=1))
    assert sorted(s.dwell_seconds for s in sightings) == [0.0, 10.0]  # two tracks, two people
    track = next(s for s in sightings if s.dwell_seconds == 10.0)
    assert (track.first_seen_at, track.last_seen_at) == (t0 - timedelta(seconds=1), t0 + timedelta(seconds=9))
