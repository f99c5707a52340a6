"""Anonymous visitors in the analytics: people counted without a face (consent-first mode,
edges with ``unmatched = "anonymous"``), next to known customers.

Self-contained on purpose: it reads :class:`~core.ports.AnonymousSightingRepository`
(``between``), which both backends implement, and never the visit tables or the
analytics engines. The Analytics page merges its figures with the known
customers' at the KPI layer (``pages/_anonymous.py``):

* :func:`anonymous_counts` -> people, per day, per hour of day, per zone (with dwell);
* :func:`footfall_mix` -> one long table ``(key, kind, people)`` with ``kind`` either
  :data:`KNOWN` or :data:`ANONYMOUS`, for stacked charts.

An hourly roll-up (``core.retention``) counts as its ``people`` and carries their
mean dwell, so old ranges give the same totals as fresh ones. The range and the
cameras are an :class:`~core.analytics_types.AnalyticsFilter`'s; days and hours
are in its time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from core.analytics_types import AnalyticsFilter
from core.ports import Repositories

#: Labels the dashboard shows for the two kinds of people counted.
KNOWN = "known customers"
ANONYMOUS = "anonymous visitors"


@dataclass(frozen=True)
class AnonymousCounts:
    """Anonymous visitors in a range: ``per_day`` (day, people), ``per_hour`` (hour, people),
    ``per_zone`` (zone, people, avg_dwell_s)."""

    people: int
    avg_dwell_s: float
    per_day: pd.DataFrame
    per_hour: pd.DataFrame
    per_zone: pd.DataFrame


def anonymous_counts(repos: Repositories, f: AnalyticsFilter) -> AnonymousCounts:
    """Anonymous sightings that began in the filter's range, at its cameras, in its time zone."""
    start, end = f.datetimes()
    rows = [s for s in repos.anonymous.between(start, end) if not f.cameras or s.camera_id in f.cameras]
    tz = ZoneInfo(f.tz)
    frame = pd.DataFrame(
        {
            "day": [s.first_seen_at.astimezone(tz).date().isoformat() for s in rows],
            "hour": [s.first_seen_at.astimezone(tz).hour for s in rows],
            "zone": [s.zone for s in rows],
            "people": [s.people for s in rows],
            "dwell": [s.dwell_seconds * s.people for s in rows],
        },
        columns=["day", "hour", "zone", "people", "dwell"],
    )
    people = int(frame["people"].sum()) if len(frame) else 0
    per_day = frame.groupby("day", as_index=False)["people"].sum()
    per_hour = frame.groupby("hour", as_index=False)["people"].sum()
    zones = frame.groupby("zone", as_index=False)[["people", "dwell"]].sum()
    zones["avg_dwell_s"] = (zones["dwell"] / zones["people"]).where(zones["people"] > 0, 0.0)
    return AnonymousCounts(
        people=people,
        avg_dwell_s=float(frame["dwell"].sum() / people) if people else 0.0,
        per_day=per_day.astype({"people": int}),
        per_hour=per_hour.astype({"people": int}),
        per_zone=zones[["zone", "people", "avg_dwell_s"]].astype({"people": int}),
    )


def footfall_mix(known: pd.DataFrame, anonymous: pd.DataFrame, key: str, known_column: str) -> pd.DataFrame:
    """Known customers' counts and anonymous visitors per ``key`` as one long table.

    ``known`` has ``key`` and ``known_column`` (e.g. ``visits_per_day``'s ``day`` and
    ``store_visits``); ``anonymous`` is one of :class:`AnonymousCounts`' frames.
    Returns columns ``key``, ``kind`` (:data:`KNOWN` / :data:`ANONYMOUS`), ``people``.
    """
    parts = [
        pd.DataFrame({key: known[key], "kind": KNOWN, "people": known[known_column].astype(int)}),
        pd.DataFrame({key: anonymous[key], "kind": ANONYMOUS, "people": anonymous["people"].astype(int)}),
    ]
    mixed = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if mixed is None:
        return pd.DataFrame(columns=[key, "kind", "people"])
    return mixed.sort_values([key, "kind"], kind="stable").reset_index(drop=True)


__all__ = ["ANONYMOUS", "KNOWN", "AnonymousCounts", "anonymous_counts", "footfall_mix"]
