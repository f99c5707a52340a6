"""Fixtures for the privacy tests: services in consent-first mode on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import Services, build_services
from core.consent import CONSENT_FIRST
from core.enrolment import ConsentService, consent_service
from core.models import Customer, CustomerDetails
from tests.conftest import make_settings
from tests.support.photos import photo_bytes


@pytest.fixture
def consent_first(tmp_path: Path) -> Iterator[Services]:
    """The local backend, real models, consent-first mode, on a tmp data dir."""
    svc = build_services(make_settings(tmp_path / "data", privacy_mode=CONSENT_FIRST))
    yield svc
    svc.close()


def enrol(svc: Services, name: str, photo: str, **details: object) -> Customer:
    """Enrol someone through the kiosk channel with the current notice."""
    consent: ConsentService = consent_service(svc)
    return consent.enrol(
        CustomerDetails(name, consent=True, **details),  # type: ignore[arg-type]
        photo_bytes(photo),
        channel="kiosk",
        notice_version=consent.notice().version,
    )
