"""Where face crops live in the blob store (keys shared by ingest, approvals and S3)."""

from __future__ import annotations

from core.models import FaceEvent

#: Crops of people nobody has approved yet live under this prefix, so the S3
#: lifecycle rule can expire them; approval moves them under ``CROPS_PREFIX``.
PENDING_PREFIX = "pending/"
CROPS_PREFIX = "crops/"


def crop_key_for(event: FaceEvent, *, pending: bool = False, index: int = 0) -> str:
    """Where an event's ``index``-th crop is stored.

    ``crops|pending/YYYY/MM/DD/<event_id>.jpg`` for the best crop (the key a v1
    event always had), ``<event_id>-<index>.jpg`` for the others.
    """
    prefix = PENDING_PREFIX if pending else CROPS_PREFIX
    suffix = f"-{index}" if index else ""
    return f"{prefix}{event.captured_at:%Y/%m/%d}/{event.event_id}{suffix}.jpg"


def approved_key(crop_key: str) -> str:
    """The key a pending crop moves to once its person is a customer."""
    if crop_key.startswith(PENDING_PREFIX):
        return CROPS_PREFIX + crop_key[len(PENDING_PREFIX) :]
    return crop_key


__all__ = ["CROPS_PREFIX", "PENDING_PREFIX", "approved_key", "crop_key_for"]
