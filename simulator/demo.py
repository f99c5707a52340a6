"""Demo data: a few weeks of a small store, built through the real pipeline.

``build_demo(services)`` (also ``python -m simulator demo`` and the dashboard's
Demo page) does, on the chosen backend:

1. enrols one regular (Barack Obama, loyalty ``L-1001``) from photos the video
   does not use;
2. renders a short synthetic entrance clip per person (packaged face photos
   composited on a drawn store, walking through the frame) and, for every
   simulated day, replays the clip of each visitor through the edge pipeline
   (detector, tracker, best crop, FaceEvent) into ``services.ingest``, stamped
   with that day's arrival time: known people become visits, unknown people
   pending identities (the same unknown person seen again joins their pending
   identity);
3. approves two pending identities after a few days (Grace Hopper ``L-1002``,
   Joe Biden ``L-1003``), so their later visits are recognised, and leaves the
   rest in the approval queue;
4. adds zone traffic for recognised customers (visits at the aisles, fresh,
   electronics and checkout cameras with dwell times), and
5. writes a POS CSV (sales linked by loyalty id, sales at the checkout camera
   without a loyalty card, anonymous sales) and imports it with
   :func:`core.pos.import_csv`.

It is safe to rerun: a marker in the data dir makes a second run a no-op
(``force=True`` adds another round; enrolment, approvals and transaction ids
are idempotent). ``progress(fraction, message)`` and a ``stop`` event let a UI
follow and cancel it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import ConflictError, ValidationError
from core.models import (
    CustomerDetails,
    FaceEvent,
    IngestOutcome,
    IngestResult,
    PendingIdentity,
    Visit,
    new_id,
)
from core.ports import Decision, DecisionAction
from deeplens_lambda.detector_factory import create_detector
from simulator.replay import replay
from simulator.synth import ALTERNATE_PHOTOS, PEOPLE, Appearance, render_clip

ENTRANCE = ("cam-entrance", "entrance")
ZONES = [("cam-aisles", "aisles"), ("cam-fresh", "fresh"), ("cam-electronics", "electronics")]
CHECKOUT = ("cam-checkout", "checkout")

#: person -> (display name, loyalty id, chance of visiting on a given day)
CAST: dict[str, tuple[str, str | None, float]] = {
    "obama": ("Barack Obama", "L-1001", 0.55),
    "grace": ("Grace Hopper", "L-1002", 0.50),
    "biden": ("Joe Biden", "L-1003", 0.35),
    "astronaut": ("Eileen Collins", None, 0.20),
    "ana": ("", None, 0.15),
    "ben": ("", None, 0.10),
    "dev": ("", None, 0.12),
    "emma": ("", None, 0.12),
    "finn": ("", None, 0.06),
}
ENROLLED = "obama"
APPROVE_AFTER_DAY = 3
APPROVE = ("grace", "biden")


@dataclass
class DemoReport:
    """What :func:`build_demo` did."""

    skipped: bool = False
    days: int = 0
    replays: int = 0
    frames: int = 0
    events: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    enrolled: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    zone_visits: int = 0
    transactions: int = 0
    linked_by_loyalty: int = 0
    linked_by_camera: int = 0
    pending_left: int = 0
    seconds: float = 0.0
    stopped: bool = False

    def lines(self) -> list[str]:
        if self.skipped:
            return ["demo data already present (use --force to add another round)"]
        return [
            f"simulated days     {self.days}",
            f"clips replayed     {self.replays} ({self.frames} frames)",
            f"face events        {self.events} {dict(sorted(self.outcomes.items()))}",
            f"enrolled           {', '.join(self.enrolled) or '-'}",
            f"approved           {', '.join(self.approved) or '-'}",
            f"zone visits        {self.zone_visits}",
            f"POS transactions   {self.transactions} (loyalty {self.linked_by_loyalty}, "
            f"checkout camera {self.linked_by_camera})",
            f"awaiting approval  {self.pending_left}",
            f"took               {self.seconds:.0f} s",
        ] + (["stopped early"] if self.stopped else [])


class _Recorder:
    """An in-process publisher that keeps each (event, result) pair."""

    def __init__(self, ingest: Any) -> None:
        self.ingest = ingest
        self.seen: list[tuple[FaceEvent, IngestResult]] = []

    def publish(self, event: FaceEvent) -> None:
        with contextlib.suppress(ValidationError):  # dead-lettered by ingest; a demo goes on
            self.seen.append((event, self.ingest.ingest(event, source="demo")))

    def close(self) -> None:
        """Nothing to release."""


def _marker(services: Any) -> Path:
    return Path(services.settings.data_dir) / "demo" / "built.json"


def build_demo(
    services: Any,
    *,
    days: int = 28,
    seed: int = 7,
    force: bool = False,
    end: datetime | None = None,
    workdir: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
    stop: threading.Event | None = None,
) -> DemoReport:
    """Fill ``services`` with ``days`` days of demo data ending yesterday (see the module doc)."""
    import time

    began = time.perf_counter()
    report = DemoReport(days=days)
    marker = _marker(services)
    if marker.exists() and not force:
        report.skipped = True
        return report
    notify = progress or (lambda _f, _m: None)
    rng = random.Random(seed)
    work = workdir or Path(services.settings.data_dir) / "demo"
    work.mkdir(parents=True, exist_ok=True)
    end_day = (end or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    start_day = end_day - timedelta(days=days)

    notify(0.01, "fetching face photos")
    clips = {person: _person_clip(work, person) for person in CAST}

    notify(0.05, "enrolling a regular customer")
    _enroll(services, report)

    detector = create_detector("hog", downscale=0.5)
    recorder = _Recorder(services.ingest)
    sightings: list[tuple[str, datetime, IngestResult]] = []
    for day in range(days):
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        date = start_day + timedelta(days=day)
        if date.weekday() == 6 and rng.random() < 0.7:
            continue  # mostly closed on Sundays
        visitors = [p for p, (_, _, chance) in CAST.items() if rng.random() < chance]
        for person in visitors:
            arrival = date + timedelta(hours=rng.uniform(9, 19.5))
            before = len(recorder.seen)
            summary = replay(
                clips[person],
                recorder,
                store_id=services.settings.store_id,
                camera_id=ENTRANCE[0],
                zone=ENTRANCE[1],
                every=3,
                detector=detector,
                start_time=arrival,
            )
            report.replays += 1
            report.frames += summary.frames
            for _event, result in recorder.seen[before:]:
                sightings.append((person, arrival, result))
        if day >= APPROVE_AFTER_DAY:  # the manager catches up with the approval queue
            _approve(services, recorder, sightings, report)
        notify(0.08 + 0.77 * (day + 1) / days, f"day {day + 1}/{days}: {len(visitors)} visitors")

    for _event, result in recorder.seen:
        outcome = str(result.outcome)
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    report.events = len(recorder.seen)

    notify(0.88, "zone traffic")
    checkout_times = _zone_traffic(services, sightings, rng, report)
    notify(0.93, "point-of-sale transactions")
    _transactions(services, work, sightings, checkout_times, rng, report, start_day, days)
    report.pending_left = len(services.approvals.list_pending())
    report.seconds = time.perf_counter() - began
    if not report.stopped:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            json.dumps(
                {
                    "built_at": datetime.now(UTC).isoformat(),
                    "days": days,
                    "events": report.events,
                    "seed": seed,
                }
            )
        )
    notify(1.0, "done")
    return report


def _person_clip(work: Path, person: str) -> Path:
    path = work / "clips" / f"{person}.mp4"
    if not path.exists():
        script = [Appearance(person, 0.3, 2.6, (150.0, 250.0), (490.0, 235.0), face_px=175)]
        render_clip(path, script, seconds=3.2)
    return path


def _photo_bytes(name: str) -> bytes:
    from simulator.photos import photo

    return photo(name).read_bytes()


def _enroll(services: Any, report: DemoReport) -> None:
    name, loyalty, _ = CAST[ENROLLED]
    assert loyalty is not None
    if services.repos.customers.find_by_loyalty_id(loyalty) is not None:
        return
    images = [_photo_bytes(p) for p in ALTERNATE_PHOTOS.get(ENROLLED, [PEOPLE[ENROLLED][0]])]
    services.customers.enroll(
        name, images, email=f"{ENROLLED}@example.com", loyalty_id=loyalty, consent=True, actor="demo"
    )
    report.enrolled.append(name)


def _approve(
    services: Any,
    recorder: _Recorder,
    sightings: list[tuple[str, datetime, IngestResult]],
    report: DemoReport,
) -> None:
    for person in APPROVE:
        name, loyalty, _ = CAST[person]
        if loyalty and services.repos.customers.find_by_loyalty_id(loyalty) is not None:
            continue
        pending_ids = [
            r.pending_id
            for p, _, r in sightings
            if p == person and r.pending_id and r.outcome == IngestOutcome.PENDING
        ]
        for pending_id in dict.fromkeys(pending_ids):
            details = CustomerDetails(
                name=name, email=f"{person}@example.com", loyalty_id=loyalty, consent=True
            )
            decision = Decision(action=DecisionAction.APPROVE, actor="demo", details=details)
            try:
                services.approvals.decide(pending_id, decision)
            except (ConflictError, ValidationError):
                continue  # decided already (rerun) or merged away
            report.approved.append(name)
            break


def _customer_of(services: Any, result: IngestResult) -> str | None:
    """The customer a sighting belongs to now (pending identities approved later included)."""
    if result.customer_id:
        return result.customer_id
    if result.pending_id:
        pending: PendingIdentity = services.repos.pending.get(result.pending_id)
        return pending.customer_id
    return None


def _zone_traffic(
    services: Any, sightings: list[tuple[str, datetime, IngestResult]], rng: random.Random, report: DemoReport
) -> dict[tuple[str, str], datetime]:
    """Visits at the in-store cameras for recognised customers; checkout times per (person, day)."""
    checkout: dict[tuple[str, str], datetime] = {}
    store = services.settings.store_id
    done: set[tuple[str, str]] = set()
    for person, arrival, result in sightings:
        key = (person, arrival.date().isoformat())
        if key in done:
            continue
        done.add(key)
        customer_id = _customer_of(services, result)
        if customer_id is None:
            continue
        t = arrival + timedelta(minutes=rng.uniform(1, 4))
        for camera, zone in rng.sample(ZONES, rng.randint(1, len(ZONES))):
            dwell = timedelta(minutes=rng.uniform(2, 14))
            services.repos.visits.add(Visit(new_id("vis"), customer_id, store, camera, zone, t, t + dwell))
            report.zone_visits += 1
            t += dwell + timedelta(minutes=rng.uniform(0.5, 3))
        dwell = timedelta(minutes=rng.uniform(1, 5))
        visit = Visit(new_id("vis"), customer_id, store, CHECKOUT[0], CHECKOUT[1], t, t + dwell)
        services.repos.visits.add(visit)
        report.zone_visits += 1
        checkout[key] = t + dwell
    return checkout


def _transactions(
    services: Any,
    work: Path,
    sightings: list[tuple[str, datetime, IngestResult]],
    checkout: dict[tuple[str, str], datetime],
    rng: random.Random,
    report: DemoReport,
    start_day: datetime,
    days: int,
) -> None:
    from core.pos import import_csv

    rows: list[dict[str, str]] = []
    for (person, day), paid_at in sorted(checkout.items()):
        if rng.random() > 0.85:
            continue  # looked, bought nothing
        _, loyalty, _ = CAST[person]
        with_card = loyalty is not None and rng.random() < 0.7
        rows.append(
            {
                "transaction_id": f"DEMO-{day}-{person}",
                "occurred_at": (paid_at - timedelta(seconds=30)).isoformat(),
                "amount": f"{rng.uniform(4, 140):.2f}",
                "currency": "EUR",
                "loyalty_id": (loyalty or "") if with_card else "",
                "camera_id": "" if with_card else CHECKOUT[0],
            }
        )
    for offset in range(days):  # anonymous shoppers the cameras never matched
        date = start_day + timedelta(days=offset)
        for n in range(rng.randint(6, 16)):
            at = date + timedelta(hours=rng.uniform(9, 20))
            rows.append(
                {
                    "transaction_id": f"DEMO-{date:%Y-%m-%d}-anon-{n}",
                    "occurred_at": at.isoformat(),
                    "amount": f"{rng.uniform(2, 60):.2f}",
                    "currency": "EUR",
                    "loyalty_id": "",
                    "camera_id": "",
                }
            )
    path = work / "pos.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["transaction_id", "occurred_at", "amount", "currency", "loyalty_id", "camera_id"]
        )
        writer.writeheader()
        writer.writerows(rows)
    result = import_csv(services, path)
    report.transactions = result.imported
    report.linked_by_loyalty = result.linked_by_loyalty
    report.linked_by_camera = result.linked_by_camera
