"""Sightings of a known customer become visits (extended or new)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core.models import Face, FaceEvent, Visit, new_id
from core.ports import Repositories
from core.settings import Settings


def record_sighting(
    repos: Repositories,
    settings: Settings,
    customer_id: str,
    event: FaceEvent | Face,
    similarity: float | None,
) -> Visit:
    """Extend the customer's current visit or start a new one.

    A sighting within ``visit_gap_seconds`` of the previous one (same store)
    belongs to the same visit; that is what makes dwell time measurable.
    """
    store_id = getattr(event, "store_id", settings.store_id)
    latest = repos.visits.latest_for_customer(customer_id)
    gap = timedelta(seconds=settings.visit_gap_seconds)
    if (
        latest is not None
        and latest.store_id == store_id
        and latest.started_at - gap <= event.captured_at <= latest.last_seen_at + gap
    ):
        repos.visits.extend(latest.visit_id, event.captured_at)
        return replace(latest, last_seen_at=max(latest.last_seen_at, event.captured_at))
    visit = Visit(
        visit_id=new_id("vis"),
        customer_id=customer_id,
        store_id=store_id,
        camera_id=event.camera_id,
        zone=event.zone,
        started_at=event.captured_at,
        last_seen_at=event.captured_at,
        event_id=event.event_id,
        similarity=similarity,
    )
    repos.visits.add(visit)
    return visit


__all__ = ["record_sighting"]
