"""Point-of-sale import: CSV rows -> :class:`Transaction`, linked to customers.

Format (``docs/pos.md``): a header row, then one sale per row::

    transaction_id,occurred_at,amount,currency,loyalty_id,camera_id,store_id
    T-1001,2026-03-02T10:15:00+01:00,23.90,EUR,L-1001,,
    T-1002,2026-03-02T10:21:30Z,7.50,,,cam-checkout,

Required: ``transaction_id``, ``occurred_at`` (ISO-8601; no offset means UTC)
and ``amount`` (decimal, e.g. ``23.90``) or ``amount_cents`` (integer). Others
are optional. Each row is linked to a customer:

1. by ``loyalty_id`` (the customer approved with that loyalty id), else
2. by ``camera_id`` (the checkout camera) and time: the customers recognised
   at that camera from ``window_before`` before the sale to ``window_after``
   after it. Exactly one such customer links the sale; several leave it
   unlinked and count it as ``ambiguous`` (guessing would put a sale on the
   wrong person's history).

Import is idempotent on ``transaction_id``: a second import of the same file
adds nothing. Bad rows are reported with their line number and skipped; a file
without the required columns raises :class:`core.errors.ValidationError`.

>>> report = import_csv(services, "sales.csv")      # doctest: +SKIP
>>> report.imported, report.linked_by_loyalty, report.linked_by_camera
(120, 41, 17)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from core.errors import ValidationError
from core.models import Transaction

REQUIRED = ("transaction_id", "occurred_at")
KNOWN = (
    "transaction_id",
    "occurred_at",
    "amount",
    "amount_cents",
    "currency",
    "loyalty_id",
    "camera_id",
    "store_id",
)


@dataclass
class ImportReport:
    """What an import did; ``errors`` holds ``(line number, message)`` for skipped rows."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    linked_by_loyalty: int = 0
    linked_by_camera: int = 0
    ambiguous: int = 0
    unlinked: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"rows               {self.rows}",
            f"imported           {self.imported}",
            f"already imported   {self.duplicates}",
            f"linked by loyalty  {self.linked_by_loyalty}",
            f"linked by camera   {self.linked_by_camera}",
            f"ambiguous (camera) {self.ambiguous}",
            f"not linked         {self.unlinked}",
            f"bad rows           {len(self.errors)}",
        ]
        out += [f"  line {line}: {message}" for line, message in self.errors[:20]]
        return out


def describe(report: ImportReport) -> str:
    """The report as printable lines (what ``storelens pos import`` prints)."""
    return "\n".join(report.lines())


def import_csv(
    target: Any,
    source: str | Path | TextIO,
    *,
    store_id: str | None = None,
    window_before: timedelta = timedelta(minutes=10),
    window_after: timedelta = timedelta(minutes=2),
    default_currency: str = "EUR",
) -> ImportReport:
    """Import a POS CSV into ``target`` (a ``Services`` or a ``Repositories``).

    ``source`` is a path or an open text file. ``store_id`` defaults to the
    services' settings (or ``store-1``) for rows without one.
    """
    repos = getattr(target, "repos", target)
    settings = getattr(target, "settings", None)
    default_store = store_id or (settings.store_id if settings is not None else "store-1")
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="utf-8-sig") as fh:
            return _import(repos, fh, default_store, window_before, window_after, default_currency)
    return _import(repos, source, default_store, window_before, window_after, default_currency)


def _import(
    repos: Any,
    fh: TextIO | io.StringIO,
    default_store: str,
    before: timedelta,
    after: timedelta,
    default_currency: str,
) -> ImportReport:
    reader = csv.DictReader(fh)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing or not ({"amount", "amount_cents"} & set(header)):
        need = [*missing, *([] if {"amount", "amount_cents"} & set(header) else ["amount or amount_cents"])]
        raise ValidationError(f"POS CSV is missing column(s): {', '.join(need)}")
    unknown = [h for h in header if h not in KNOWN]
    if unknown:
        raise ValidationError(
            f"POS CSV has unknown column(s): {', '.join(unknown)}; known: {', '.join(KNOWN)}"
        )
    report = ImportReport()
    for raw in reader:
        report.rows += 1
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        try:
            tx = _parse_row(row, default_store, default_currency)
        except ValidationError as exc:
            report.errors.append((line, str(exc)))
            continue
        customer_id, how = _link(repos, tx, before, after)
        if how == "ambiguous":
            report.ambiguous += 1
        tx = Transaction(
            tx.transaction_id,
            tx.store_id,
            tx.occurred_at,
            tx.amount_cents,
            tx.currency,
            tx.loyalty_id,
            customer_id,
            tx.camera_id,
        )
        if not repos.transactions.add(tx):
            report.duplicates += 1
            continue
        report.imported += 1
        if how == "loyalty":
            report.linked_by_loyalty += 1
        elif how == "camera":
            report.linked_by_camera += 1
        else:
            report.unlinked += 1
    return report


def _parse_row(row: dict[str, str], default_store: str, default_currency: str) -> Transaction:
    tid = row.get("transaction_id", "")
    if not tid or len(tid) > 128:
        raise ValidationError("transaction_id must be 1-128 characters")
    occurred_at = parse_time(row.get("occurred_at", ""))
    if row.get("amount_cents"):
        try:
            cents = int(row["amount_cents"])
        except ValueError as exc:
            raise ValidationError(f"amount_cents {row['amount_cents']!r} is not an integer") from exc
    else:
        try:
            scaled = Decimal(row.get("amount", "")) * 100
            if scaled != scaled.to_integral_value() or not scaled.is_finite():
                raise ValueError("more than two decimal places")
            cents = int(scaled)
        except (InvalidOperation, ValueError) as exc:
            raise ValidationError(f"amount {row.get('amount')!r} is not a decimal (2 places)") from exc
    currency = (row.get("currency") or default_currency).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError(f"currency {currency!r} is not a 3-letter code")
    return Transaction(
        transaction_id=tid,
        store_id=row.get("store_id") or default_store,
        occurred_at=occurred_at,
        amount_cents=cents,
        currency=currency,
        loyalty_id=row.get("loyalty_id") or None,
        camera_id=row.get("camera_id") or None,
    )


def parse_time(raw: str) -> datetime:
    """ISO-8601 to aware UTC; a value without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"occurred_at {raw!r} is not ISO-8601") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _link(repos: Any, tx: Transaction, before: timedelta, after: timedelta) -> tuple[str | None, str]:
    """``(customer_id, how)`` with ``how`` one of loyalty, camera, ambiguous, none."""
    if tx.loyalty_id:
        customer = repos.customers.find_by_loyalty_id(tx.loyalty_id)
        if customer is not None:
            return customer.customer_id, "loyalty"
    if not tx.camera_id:
        return None, "none"
    start, end = tx.occurred_at - before, tx.occurred_at + after
    seen: set[str] = set()
    for event in repos.events.recent(limit=1000, camera_id=tx.camera_id, since=start):
        if event.customer_id and event.captured_at <= end:
            seen.add(event.customer_id)
    for visit in repos.visits.between(start, end):
        if visit.camera_id == tx.camera_id:
            seen.add(visit.customer_id)
    if len(seen) == 1:
        return seen.pop(), "camera"
    return None, "ambiguous" if seen else "none"
