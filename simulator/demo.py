"""Demo data: eight weeks of a store with ~300 customers, partly through the real pipeline.

``build_demo(services)`` (also ``python -m simulator demo`` and the dashboard's
Demo page) does, on the chosen backend:

1. enrols one regular (Barack Obama, loyalty ``L-1001``) from photos the video
   does not use;
2. renders short synthetic entrance clips per person (packaged face photos
   composited on a drawn store, walking through the frame; a few variants per
   person: size and path differ) and, for each of the last ``replay_days``
   days, replays a clip of each visitor through the edge pipeline (detector,
   tracker, best crop, FaceEvent) into ``services.ingest``: known people become
   visits, unknown people pending identities with real crops;
3. approves two pending identities after a few days (Grace Hopper ``L-1002``,
   Joe Biden ``L-1003``), so their later visits are recognised, and leaves the
   rest in the approval queue;
4. adds ``customers`` synthetic customers (seeded names, e-mails, loyalty ids
   for most) with ``days`` days of history: store visits (an entrance sighting
   with a face crop, 1-3 zone sightings and often the checkout, all within 30
   minutes) whose number follows the weekday (busy Fridays and Saturdays, short
   Sundays) and the hour (lunch and after-work peaks, closed at night). Each
   entrance crop is cut from the person's photo with fresh image transforms
   (:func:`simulator.photos.varied_crop`), from another photo of the person
   when the packages have one; similarities are drawn (see :func:`_similarity`);
5. adds zone traffic for the pipeline's recognised customers, and
6. writes a POS CSV (sales linked by loyalty id, sales at the checkout camera
   without a loyalty card, anonymous sales) and imports it with
   :func:`core.pos.import_csv`.

It is safe to rerun: a marker in the data dir makes a second run a no-op
(``force=True`` adds another round with new customers; enrolment, approvals and
transaction ids are idempotent). ``progress(fraction, message)`` and a ``stop``
event let a UI follow and cancel it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.approvals import validate_details
from core.crop_keys import crop_key_for
from core.errors import ConflictError, ValidationError
from core.models import (
    BoundingBox,
    Customer,
    CustomerDetails,
    FaceCrop,
    FaceEvent,
    FaceStatus,
    IngestOutcome,
    IngestResult,
    PendingIdentity,
    Visit,
    face_from_event,
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
CLIP_VARIANTS = 2  # entrance clips per person (face size and path); each replay is relit too

#: Faces for the synthetic customers: every packaged face (several share a group photo).
FACE_POOL = tuple(PEOPLE)
#: Other photos of a person in the packages: a sighting picks one of them.
MORE_PHOTOS: dict[str, tuple[str, ...]] = {"obama": ("obama2", "obama3")}

FIRST_NAMES = (  # noqa: SIM905
    "Aisha Alba Andrei Anna Arjun Bea Carlos Chen Clara Daniel Dara Elena Emil Eva Farah Felix "
    "Hana Hugo Ines Ivan Jana Jonas Julia Kai Karin Lea Leo Lina Luca Maja Marco Maria Mateo "
    "Mia Nadia Nico Noor Olga Omar Paula Pedro Priya Rosa Sami Sara Sofia Tariq Tomas Vera "
    "Yusuf Zoe"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Almeida Bauer Becker Costa Dubois Eriksen Fischer Garcia Haddad Hansen Ivanova Jensen "
    "Kaya Keller Kowalski Lang Larsen Lopez Martin Meyer Moreau Novak Nowak Okafor Olsen Patel "
    "Petrov Richter Rossi Santos Schmidt Silva Singh Sousa Tanaka Torres Vogel Wagner Weber "
    "Yilmaz Zimmer"
).split()

#: Relative traffic per weekday (Monday first) and opening hours per weekday (UTC, the demo store's time).
WEEKDAY_WEIGHT = (0.8, 0.75, 0.85, 0.95, 1.25, 1.6, 0.55)
OPEN_HOURS = {**{wd: (8, 21) for wd in range(6)}, 6: (10, 18)}
#: Relative traffic per opening hour: a lunch peak and a bigger after-work peak on weekdays,
#: late morning to afternoon at weekends.
WEEKDAY_HOURS = {8: 0.5, 9: 0.55, 10: 0.65, 11: 0.9, 12: 1.35, 13: 1.1, 14: 0.7, 15: 0.7,
                 16: 0.95, 17: 1.6, 18: 1.9, 19: 1.45, 20: 0.75}  # fmt: skip
WEEKEND_HOURS = {8: 0.4, 9: 0.7, 10: 1.1, 11: 1.45, 12: 1.5, 13: 1.4, 14: 1.3, 15: 1.25,
                 16: 1.15, 17: 1.0, 18: 0.8, 19: 0.6, 20: 0.4}  # fmt: skip
VISITS_PER_CUSTOMER = 5000 / 300  # over the default eight weeks: ~5,000 store visits for 300 customers


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
    customers: int = 0
    store_visits: int = 0
    zone_visits: int = 0
    crops: int = 0
    transactions: int = 0
    linked_by_loyalty: int = 0
    linked_by_camera: int = 0
    pending_left: int = 0
    seconds: float = 0.0
    stopped: bool = False

    def lines(self) -> list[str]:
        """The report as text lines for a terminal."""
        if self.skipped:
            return ["demo data already present (use --force to add another round)"]
        return [
            f"simulated days     {self.days}",
            f"clips replayed     {self.replays} ({self.frames} frames)",
            f"face events        {self.events} {dict(sorted(self.outcomes.items()))}",
            f"enrolled           {', '.join(self.enrolled) or '-'}",
            f"approved           {', '.join(self.approved) or '-'}",
            f"synthetic history  {self.customers} customers, {self.store_visits} store visits, "
            f"{self.crops} crops",
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
    days: int = 56,
    customers: int = 300,
    replay_days: int = 7,
    seed: int = 7,
    force: bool = False,
    end: datetime | None = None,
    workdir: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
    stop: threading.Event | None = None,
) -> DemoReport:
    """Fill ``services`` with ``days`` days of demo data ending yesterday (see the module doc).

    ``customers`` synthetic customers make ~17 store visits each over eight
    weeks; the real pipeline replays the cast's clips on the last
    ``replay_days`` days.
    """
    import time

    began = time.perf_counter()
    report = DemoReport(days=days)
    marker = _marker(services)
    rounds = 0
    if marker.exists():
        if not force:
            report.skipped = True
            return report
        with contextlib.suppress(ValueError, OSError):
            rounds = int(json.loads(marker.read_text()).get("rounds", 1))
    round_no = rounds + 1
    notify = progress or (lambda _f, _m: None)
    rng = random.Random(seed * 1000 + round_no)
    work = workdir or Path(services.settings.data_dir) / "demo"
    work.mkdir(parents=True, exist_ok=True)
    end_day = (end or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    start_day = end_day - timedelta(days=days)
    replay_days = max(0, min(replay_days, days))

    notify(0.01, "fetching face photos")
    clips = {
        (person, variant): _person_clip(work, person, variant)
        for person in CAST
        for variant in range(CLIP_VARIANTS)
    }

    notify(0.05, "enrolling a regular customer")
    _enroll(services, report)

    detector = create_detector("hog", downscale=0.5)
    recorder = _Recorder(services.ingest)
    sightings: list[tuple[str, datetime, IngestResult]] = []
    first_replay = days - replay_days
    for day in range(first_replay, days):
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        date = start_day + timedelta(days=day)
        visitors = [
            p for p, (_, _, chance) in CAST.items() if rng.random() < chance * WEEKDAY_WEIGHT[date.weekday()]
        ]
        for person in visitors:
            arrival = _arrival(date, rng, "any")
            before = len(recorder.seen)
            clip = _relit_clip(
                clips[(person, rng.randrange(CLIP_VARIANTS))], work / "clips" / "today.mp4", rng
            )
            summary = replay(
                clip,
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
        if day - first_replay >= APPROVE_AFTER_DAY:  # the manager catches up with the approval queue
            _approve(services, recorder, sightings, report)
        done = day - first_replay + 1
        notify(0.08 + 0.5 * done / replay_days, f"replay day {done}/{replay_days}: {len(visitors)} visitors")

    for _event, result in recorder.seen:
        outcome = str(result.outcome)
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    report.events = len(recorder.seen)

    sales: list[dict[str, str]] = []
    if not report.stopped:
        notify(0.6, f"{customers} customers over {days} days")
        sales = _synthetic_history(services, rng, report, start_day, days, customers, round_no, notify)

    notify(0.88, "zone traffic")
    checkout_times = _zone_traffic(services, sightings, rng, report)
    notify(0.93, "point-of-sale transactions")
    _transactions(services, work, sightings, checkout_times, sales, rng, report, start_day, days, round_no)
    report.pending_left = len(services.approvals.list_pending())
    report.seconds = time.perf_counter() - began
    if not report.stopped:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            json.dumps(
                {
                    "built_at": datetime.now(UTC).isoformat(),
                    "days": days,
                    "customers": customers,
                    "events": report.events,
                    "seed": seed,
                    "rounds": round_no,
                }
            )
        )
    notify(1.0, "done")
    return report


def _person_clip(work: Path, person: str, variant: int = 0) -> Path:
    path = work / "clips" / f"{person}-{variant}.mp4"
    if not path.exists():
        # Variants differ in face size and path, so the edge cuts different crops.
        face_px = (175, 150, 205)[variant % 3]
        y0, y1 = (250.0, 235.0) if variant % 2 == 0 else (225.0, 260.0)
        script = [Appearance(person, 0.3, 2.6, (150.0, y0), (490.0, y1), face_px=face_px)]
        render_clip(path, script, seconds=3.2)
    return path


def _relit_clip(base: Path, out: Path, rng: random.Random) -> Path:
    """``base`` re-encoded under this visit's light and focus, so no two replays cut the same crops.

    One gamma, brightness/contrast shift and blur for the whole clip (the
    day's light, the camera's focus); without it a replay of the same clip
    gives byte-identical crops and a similarity of 1.0 once a crop is a template.
    """
    import cv2
    import numpy as np

    gamma = float(np.exp(rng.uniform(-0.35, 0.35)))
    table = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0, 0, 255).astype(np.uint8)
    alpha, beta = rng.uniform(0.85, 1.1), rng.uniform(-15, 15)
    sigma = rng.choice([0.0, rng.uniform(0.5, 1.2)])
    reader = cv2.VideoCapture(str(base))
    fps = reader.get(cv2.CAP_PROP_FPS) or 15.0
    writer: Any = None
    try:
        while True:
            ok, frame = reader.read()
            if not ok:
                break
            frame = cv2.convertScaleAbs(cv2.LUT(frame, table), alpha=alpha, beta=beta)
            if sigma:
                frame = cv2.GaussianBlur(frame, (0, 0), sigma)
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
            writer.write(frame)
    finally:
        reader.release()
        if writer is not None:
            writer.release()
    return out


def _arrival(date: datetime, rng: random.Random, habit: str) -> datetime:
    """A time on ``date`` within opening hours, weighted by the hour profile and a habit."""
    opens, closes = OPEN_HOURS[date.weekday()]
    profile = WEEKEND_HOURS if date.weekday() >= 5 else WEEKDAY_HOURS
    hours = list(range(opens, closes))
    weights = [profile[h] * _habit_weight(habit, h) for h in hours]
    hour = rng.choices(hours, weights)[0]
    # Leave 30 min before closing for the stay itself.
    minute = rng.uniform(0, 30 if hour == closes - 1 else 60)
    return date + timedelta(hours=hour, minutes=minute)


def _habit_weight(habit: str, hour: int) -> float:
    if habit == "lunch":
        return 2.5 if 11 <= hour <= 14 else 0.6
    if habit == "evening":
        return 2.5 if hour >= 17 else 0.6
    if habit == "morning":
        return 2.5 if hour <= 10 else 0.6
    return 1.0


@dataclass
class _Face:
    """The photos of one face: (BGR image, face box) per photo."""

    photos: list[tuple[Any, tuple[int, int, int, int]]]


def _faces() -> dict[str, _Face]:
    """Each pool face's photos, decoded once; extra photos get their box from the HOG detector."""
    import cv2
    import numpy as np

    from simulator.photos import photo

    decoded: dict[str, Any] = {}

    def image(name: str) -> Any:
        if name not in decoded:
            data = np.frombuffer(photo(name).read_bytes(), dtype=np.uint8)
            decoded[name] = cv2.imdecode(data, cv2.IMREAD_COLOR)
        return decoded[name]

    detector = create_detector("hog")
    faces: dict[str, _Face] = {}
    for person in FACE_POOL:
        name, box = PEOPLE[person]
        photos = [(image(name), box)]
        for extra in MORE_PHOTOS.get(person, ()):
            found = detector.detect(image(extra))
            if found:
                b = found[0].bbox
                photos.append((image(extra), (b.left, b.top, b.width, b.height)))
        faces[person] = _Face(photos)
    return faces


def _similarity(difficulty: float, rng: random.Random) -> float:
    """A same-person similarity for a crop of ``difficulty`` (0 good .. 1 poor).

    Drawn, not computed: most pool faces have a single photo, so an engine
    score would only measure our own transforms, and embedding ~5,000 crops
    costs minutes on two cores. The draw follows the same-person scores the
    local engine gives on real camera crops (bench/accuracy.py: mostly
    0.55-0.80, sharp large faces at the top), so the Live feed and profiles show
    realistic spread; the pipeline's own sightings keep their real scores.
    """
    score = 0.80 - 0.22 * difficulty + rng.gauss(0.0, 0.035)
    return round(min(0.88, max(0.52, score)), 3)


@dataclass
class _Synthetic:
    customer: Customer
    face: str
    rate: float  # store visits per week
    first_day: int
    habit: str
    spend: float  # median basket in EUR


def _synthetic_history(
    services: Any,
    rng: random.Random,
    report: DemoReport,
    start_day: datetime,
    days: int,
    count: int,
    round_no: int,
    notify: Callable[[float, str], None],
) -> list[dict[str, str]]:
    """Write ``count`` customers with ``days`` days of store visits; return their POS rows."""
    faces = _faces()
    store = services.settings.store_id
    people: list[_Synthetic] = []
    # Distinct names while they last (2,000+ combinations), then repeats as in any town.
    combos = [(f, la) for f in FIRST_NAMES for la in LAST_NAMES]
    rng.shuffle(combos)
    for i in range(count):
        first, last = combos[i % len(combos)]
        tag = f"{round_no}{i + 1:04d}"
        # Most joined before the period; the rest spread over it (new customers by first visit).
        first_day = 0 if rng.random() < 0.6 else rng.randrange(days)
        details = validate_details(
            CustomerDetails(
                name=f"{first} {last}",
                email=f"{first}.{last}.{tag}@example.com".lower(),
                loyalty_id=f"L-{tag}" if rng.random() < 0.7 else None,
                consent=True,
            )
        )
        joined = start_day + timedelta(days=first_day, hours=8)
        people.append(
            _Synthetic(
                customer=Customer.from_details(details, now=joined),
                face=FACE_POOL[i % len(FACE_POOL)],
                rate=rng.lognormvariate(0.0, 0.8),  # a few regulars, many occasional visitors
                first_day=first_day,
                habit=rng.choices(["any", "lunch", "evening", "morning"], [4, 2, 3, 1])[0],
                spend=rng.lognormvariate(3.0, 0.5),
            )
        )
    # Scale the rates so the expected number of store visits is VISITS_PER_CUSTOMER * count * days / 56.
    mean_weight = sum(WEEKDAY_WEIGHT) / 7
    weights = [WEEKDAY_WEIGHT[(start_day + timedelta(days=d)).weekday()] / mean_weight for d in range(days)]
    target = VISITS_PER_CUSTOMER * count * days / 56

    def expected(f: float) -> float:
        return sum(min(0.9, p.rate * f / 7 * w) for p in people for w in weights[p.first_day :])

    factor = 1.0
    for _ in range(6):  # the daily cap keeps regulars from counting fully: iterate to the target
        factor *= target / max(expected(factor), 1e-9)

    sales: list[dict[str, str]] = []
    # Crops go to the blob store from a few threads: each put is fsynced, and the
    # fsyncs overlap (one at a time they were a third of the demo's time).
    with (
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo-crops") as writer,
        services.repos.atomic(),  # one transaction: thousands of rows in a second or two
    ):
        puts: list[Future[None]] = []
        for n, person in enumerate(people):
            customer = person.customer
            services.repos.customers.add(customer)
            report.customers += 1
            for day in range(person.first_day, days):
                date = start_day + timedelta(days=day)
                if rng.random() >= min(0.9, person.rate * factor / 7 * weights[day]):
                    continue
                arrival = _arrival(date, rng, person.habit)
                if day == person.first_day:
                    arrival = max(arrival, customer.created_at)
                sale = _store_visit(services, store, person, faces, arrival, rng, report, writer, puts)
                if sale is not None:
                    sales.append(sale)
            if n % 25 == 24:
                notify(0.6 + 0.27 * (n + 1) / count, f"customer {n + 1}/{count}")
        for put in puts:
            put.result()  # a failed write fails the demo (and rolls its rows back)
    return sales


def _store_visit(
    services: Any,
    store: str,
    person: _Synthetic,
    faces: dict[str, _Face],
    arrival: datetime,
    rng: random.Random,
    report: DemoReport,
    writer: ThreadPoolExecutor,
    puts: list[Future[None]],
) -> dict[str, str] | None:
    """One entry-to-exit stay: entrance sighting with a crop, zones, maybe checkout; the sale row."""
    from simulator.photos import varied_crop

    customer = person.customer
    image, box = rng.choice(faces[person.face].photos)
    jpeg, difficulty = varied_crop(image, box, rng)
    similarity = _similarity(difficulty, rng)
    side = round(max(box[2], box[3]) * rng.uniform(0.9, 1.1))
    bbox = BoundingBox(rng.randint(200, 700), rng.randint(150, 400), side, side)
    crop = FaceCrop(
        jpeg=jpeg, bbox=bbox, face=None, captured_at=arrival, confidence=round(rng.uniform(0.8, 0.99), 3)
    )
    event = FaceEvent.from_crops(
        event_id=new_id("evt"),
        store_id=store,
        camera_id=ENTRANCE[0],
        zone=ENTRANCE[1],
        frame_width=1280,
        frame_height=720,
        detector="demo",
        track_id=new_id("trk"),
        crops=(crop,),
    )
    key = crop_key_for(event)
    puts.append(writer.submit(services.blobs.put, key, jpeg))
    services.repos.events.record(event, key, str(IngestOutcome.VISIT), customer.customer_id, None, similarity)
    # As ingest does for a recognised visit: the crop joins the profile's photos (not a template).
    services.repos.faces.add(
        face_from_event(
            event, key, FaceStatus.CUSTOMER, similarity=similarity, customer_id=customer.customer_id
        )
    )
    t = arrival
    dwell = timedelta(seconds=rng.uniform(4, 20))
    visits = [
        Visit(new_id("vis"), customer.customer_id, store, *ENTRANCE, t, t + dwell, event.event_id, similarity)
    ]
    t += dwell + timedelta(minutes=rng.uniform(0.5, 2))
    stay_end = arrival + timedelta(minutes=30)
    for camera, zone in rng.sample(ZONES, rng.randint(1, len(ZONES))):
        dwell = timedelta(minutes=rng.uniform(1.5, 7))
        if t + dwell > stay_end - timedelta(minutes=3):
            break
        visits.append(
            Visit(
                new_id("vis"),
                customer.customer_id,
                store,
                camera,
                zone,
                t,
                t + dwell,
                None,
                _similarity(rng.random(), rng),
            )
        )
        t += dwell + timedelta(minutes=rng.uniform(0.3, 1.5))
    buys = rng.random() < 0.7
    if buys:
        dwell = timedelta(minutes=rng.uniform(1, 3))
        visits.append(
            Visit(
                new_id("vis"),
                customer.customer_id,
                store,
                *CHECKOUT,
                t,
                t + dwell,
                None,
                _similarity(rng.random(), rng),
            )
        )
        t += dwell
    for visit in visits:
        services.repos.visits.add(visit)
    report.store_visits += 1
    report.zone_visits += len(visits) - 1
    report.crops += 1
    if not buys:
        return None
    # With a loyalty card the sale links by id; without one, at the checkout camera (or not at all).
    with_card = customer.loyalty_id is not None and rng.random() < 0.75
    return {
        "transaction_id": f"DEMO-{event.event_id}",
        "occurred_at": (t - timedelta(seconds=30)).isoformat(),
        "amount": f"{max(1.5, rng.lognormvariate(0.0, 0.45) * person.spend):.2f}",
        "currency": "EUR",
        "loyalty_id": (customer.loyalty_id or "") if with_card else "",
        "camera_id": "" if with_card or rng.random() < 0.5 else CHECKOUT[0],
    }


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
        t = arrival + timedelta(minutes=rng.uniform(1, 3))
        stay_end = arrival + timedelta(minutes=30)  # one store visit: entrance to exit within 30 min
        for camera, zone in rng.sample(ZONES, rng.randint(1, len(ZONES))):
            dwell = timedelta(minutes=rng.uniform(1.5, 7))
            if t + dwell > stay_end - timedelta(minutes=4):
                break
            visit = Visit(
                new_id("vis"),
                customer_id,
                store,
                camera,
                zone,
                t,
                t + dwell,
                None,
                _similarity(rng.random(), rng),
            )
            services.repos.visits.add(visit)
            report.zone_visits += 1
            t += dwell + timedelta(minutes=rng.uniform(0.3, 1.5))
        dwell = timedelta(minutes=rng.uniform(1, 3))
        visit = Visit(
            new_id("vis"), customer_id, store, *CHECKOUT, t, t + dwell, None, _similarity(rng.random(), rng)
        )
        services.repos.visits.add(visit)
        report.zone_visits += 1
        checkout[key] = t + dwell
    return checkout


def _transactions(
    services: Any,
    work: Path,
    sightings: list[tuple[str, datetime, IngestResult]],
    checkout: dict[tuple[str, str], datetime],
    sales: list[dict[str, str]],
    rng: random.Random,
    report: DemoReport,
    start_day: datetime,
    days: int,
    round_no: int,
) -> None:
    from core.pos import import_csv

    rows: list[dict[str, str]] = list(sales)
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
    # Anonymous shoppers the cameras never matched: about as many as the customers' sales,
    # following the same weekday and hour pattern.
    per_day = max(6.0, len(sales) / max(days, 1))
    for offset in range(days):
        date = start_day + timedelta(days=offset)
        mean = per_day * WEEKDAY_WEIGHT[date.weekday()]
        for n in range(max(0, round(rng.gauss(mean, mean**0.5)))):
            at = _arrival(date, rng, "any") + timedelta(minutes=rng.uniform(5, 25))
            rows.append(
                {
                    "transaction_id": f"DEMO-{date:%Y-%m-%d}-anon-{round_no}-{n}",
                    "occurred_at": at.isoformat(),
                    "amount": f"{rng.lognormvariate(2.8, 0.6):.2f}",
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
    with services.repos.atomic():  # one commit for thousands of sales, not one each
        result = import_csv(services, path)
    report.transactions = result.imported
    report.linked_by_loyalty = result.linked_by_loyalty
    report.linked_by_camera = result.linked_by_camera
