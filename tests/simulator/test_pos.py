"""POS CSV import: loyalty and checkout-camera linking, idempotency, bad rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.errors import ValidationError
from core.models import Customer, Visit, new_id
from core.pos import describe, import_csv

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def customer(services: Services, name: str, loyalty: str | None) -> Customer:
    c = Customer(new_id("cus"), name, loyalty_id=loyalty, consent=True, consent_at=T)
    services.repos.customers.add(c)
    return c


def at_checkout(services: Services, c: Customer, when: datetime, camera: str = "cam-checkout") -> None:
    services.repos.visits.add(
        Visit(new_id("vis"), c.customer_id, "store-1", camera, "checkout", when, when + timedelta(minutes=3))
    )


CSV = """transaction_id,occurred_at,amount,currency,loyalty_id,camera_id,store_id
T-1,2026-03-02T11:15:00+01:00,23.90,EUR,L-1,,
T-2,2026-03-02T10:04:00Z,7.50,,,cam-checkout,
T-3,2026-03-02T14:04:00Z,12.00,EUR,,cam-checkout,
T-4,2026-03-02T16:00:00,3.10,usd,L-404,,store-2
T-5,2026-03-02T18:00:00Z,1.234,EUR,,,
T-6,yesterday,1.00,EUR,,,
T-7,2026-03-02T19:00:00Z,,EUR,,,
"""


def test_links_by_loyalty_then_by_checkout_camera(services: Services, tmp_path: Path) -> None:
    ada = customer(services, "Ada", "L-1")
    bob = customer(services, "Bob", None)
    cy = customer(services, "Cy", None)
    at_checkout(services, bob, T)  # T-2 at 10:04: only Bob was at the checkout -> Bob
    at_checkout(services, bob, T.replace(hour=14))  # T-3 at 14:04: Bob and Cy -> ambiguous
    at_checkout(services, cy, T.replace(hour=14, minute=1))
    at_checkout(services, ada, T.replace(hour=14), camera="cam-aisles")  # another camera: ignored
    path = tmp_path / "sales.csv"
    path.write_text(CSV)

    report = import_csv(services, path)
    assert (report.rows, report.imported) == (7, 4)
    assert (report.linked_by_loyalty, report.linked_by_camera, report.ambiguous) == (1, 1, 1)
    assert report.unlinked == 2  # the ambiguous one and the unknown loyalty id
    assert [line for line, _ in report.errors] == [6, 7, 8]
    assert "2 places" in report.errors[0][1] and "ISO-8601" in report.errors[1][1]
    assert "linked by loyalty  1" in describe(report) and "line 7:" in describe(report)

    day = services.repos.transactions.between(T - timedelta(hours=2), T + timedelta(hours=12))
    by_id = {t.transaction_id: t for t in day}
    assert by_id["T-1"].customer_id == ada.customer_id and by_id["T-1"].amount_cents == 2390
    assert by_id["T-1"].occurred_at == T.replace(hour=10, minute=15)
    assert by_id["T-2"].customer_id == bob.customer_id and by_id["T-2"].currency == "EUR"
    assert by_id["T-3"].customer_id is None
    assert by_id["T-4"].customer_id is None and by_id["T-4"].store_id == "store-2"
    assert by_id["T-4"].currency == "USD" and by_id["T-4"].occurred_at == T.replace(hour=16)

    again = import_csv(services.repos, io.StringIO(CSV))  # repositories work too; nothing added twice
    assert (again.imported, again.duplicates) == (0, 4)


def test_missing_or_unknown_columns_are_rejected(services: Services) -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        import_csv(services, io.StringIO("transaction_id,amount\nT-1,1.00\n"))
    with pytest.raises(ValidationError, match="amount or amount_cents"):
        import_csv(services, io.StringIO("transaction_id,occurred_at\nT-1,2026-03-02T10:00:00Z\n"))
    with pytest.raises(ValidationError, match="unknown column"):
        import_csv(services, io.StringIO("transaction_id,occurred_at,amount,tip\n"))
    cents_only = "transaction_id,occurred_at,amount_cents\nT-9,2026-03-02T10:00Z,250\n"
    report = import_csv(services, io.StringIO(cents_only))
    assert report.imported == 1
