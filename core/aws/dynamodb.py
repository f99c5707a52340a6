"""DynamoDB repositories: every repository port of ``core.ports`` on DynamoDB.

Table design (one table per aggregate, named ``<prefix>-<name>``; the same
definitions are in ``infra/template.yaml`` and a test keeps them in step):

============== ============== ==================================================
table          key            global secondary indexes (partition, sort)
============== ============== ==================================================
customers      customer_id    ``by_loyalty`` (loyalty_id)
faces          face_id        ``by_customer`` (customer_id, captured_at),
                              ``by_pending`` (pending_id, captured_at),
                              ``by_status`` (status, captured_at),
                              ``by_index_face`` (index_face_id)
visits         visit_id       ``by_customer`` (customer_id, started_at),
                              ``by_day`` (day, started_at)
pending        pending_id     ``by_status`` (status, last_seen_at)
transactions   transaction_id ``by_customer`` (customer_id, occurred_at),
                              ``by_day`` (day, occurred_at)
events         event_id       ``by_feed`` (feed, captured_at),
                              ``by_customer`` (customer_id), ``by_pending`` (pending_id)
dead_letters   dead_letter_id ``by_feed`` (feed, received_at)
audit          audit_id       ``by_subject`` (subject_id, at), ``by_feed`` (feed, at)
tokens         nonce          (none; TTL on ``ttl``)
tracks         track_key      (none; TTL on ``ttl``: a track's owner, see ``TrackLink``)
approvals      pending_id     (none; Step Functions task tokens, see ``stepfunctions.py``)
anonymous_     sighting_id    ``by_day`` (day, first_seen_at); consent-first mode,
sightings                     no face and no identity
============== ============== ==================================================

* Times are fixed-width ISO-8601 UTC strings, so string order is time order and
  the first ten characters are the UTC ``day`` used by the ``by_day`` indexes.
* Idempotency: ``events.record``, ``transactions.add`` and ``tokens.consume`` are
  conditional puts (``attribute_not_exists``); a lost race returns ``False``.
* Privacy: unapproved pending identities and their faces carry a ``ttl``
  attribute (epoch seconds, ``expires_at`` plus a grace period so the expiry
  sweep, which also deletes crops and index entries, runs first); approval
  removes it. Used token nonces expire the same way.
* ``atomic()`` is best effort, as the port allows: writes are ordered and
  idempotent rather than transactional.

>>> repos = DynamoDbRepositories(prefix="storelens", client=dynamodb_client)   # doctest: +SKIP
>>> repos.create_tables()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from core.aws._common import AwsAdapter, error_code
from core.errors import BackendError, ConflictError, NotFoundError
from core.models import (
    TRACK_LINK_RETENTION,
    AnonymousSighting,
    AuditEntry,
    Customer,
    DeadLetter,
    Face,
    FaceEvent,
    FaceStatus,
    PendingIdentity,
    PendingKind,
    PendingStatus,
    SeenEvent,
    TrackLink,
    Transaction,
    Visit,
    from_stored_time,
    to_stored_time,
    track_key,
)

#: Extra time after ``expires_at`` before DynamoDB TTL may delete an item: the
#: expiry sweep must see it first to remove crops and face-index entries.
TTL_GRACE = timedelta(days=7)
FEED = "all"
#: A track link outlives its last crop by this much before DynamoDB TTL removes
#: it (ingest stops joining a track long before: after ``visit_gap_seconds``).
TRACK_TTL = TRACK_LINK_RETENTION
#: Dead-letter payloads are cut to this many bytes (DynamoDB items max out at 400 KB).
MAX_DEAD_LETTER_PAYLOAD = 300_000

# name -> (hash key, [(index name, partition attr, sort attr | None)], ttl attribute | None)
TABLES: dict[str, tuple[str, list[tuple[str, str, str | None]], str | None]] = {
    "customers": ("customer_id", [("by_loyalty", "loyalty_id", None)], None),
    "faces": (
        "face_id",
        [
            ("by_customer", "customer_id", "captured_at"),
            ("by_pending", "pending_id", "captured_at"),
            ("by_status", "status", "captured_at"),
            ("by_index_face", "index_face_id", None),
        ],
        "ttl",
    ),
    "visits": (
        "visit_id",
        [("by_customer", "customer_id", "started_at"), ("by_day", "day", "started_at")],
        None,
    ),
    "pending": ("pending_id", [("by_status", "status", "last_seen_at")], "ttl"),
    "transactions": (
        "transaction_id",
        [("by_customer", "customer_id", "occurred_at"), ("by_day", "day", "occurred_at")],
        None,
    ),
    "events": (
        "event_id",
        [
            ("by_feed", "feed", "captured_at"),
            ("by_customer", "customer_id", None),
            ("by_pending", "pending_id", None),
        ],
        None,
    ),
    "dead_letters": ("dead_letter_id", [("by_feed", "feed", "received_at")], None),
    "audit": ("audit_id", [("by_subject", "subject_id", "at"), ("by_feed", "feed", "at")], None),
    "tokens": ("nonce", [], "ttl"),
    "tracks": ("track_key", [], "ttl"),
    "approvals": ("pending_id", [], None),
    "anonymous_sightings": ("sighting_id", [("by_day", "day", "first_seen_at")], None),
}


to_db_time = to_stored_time
from_db_time = from_stored_time


def _req_time(value: str) -> datetime:
    parsed = from_db_time(value)
    assert parsed is not None
    return parsed


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


class _Codec:
    """boto3's type (de)serialisers, with floats carried as Decimal."""

    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    def to_item(self, data: dict[str, Any]) -> dict[str, Any]:
        """Drop ``None`` values (GSIs stay sparse) and serialise the rest."""
        return {k: self._ser.serialize(_to_dynamo(v)) for k, v in data.items() if v is not None}

    def value(self, value: Any) -> dict[str, Any]:
        serialized: dict[str, Any] = self._ser.serialize(_to_dynamo(value))
        return serialized

    def from_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: _from_dynamo(self._de.deserialize(v)) for k, v in item.items()}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), bytes):  # boto3 Binary
        return bytes(value.value)
    return value


class _Table:
    """One DynamoDB table: paginated query/scan and conditional writes."""

    def __init__(self, repos: DynamoDbRepositories, name: str) -> None:
        self._repos = repos
        self.short_name = name
        self.name = f"{repos.prefix}-{name}"
        self.key = TABLES[name][0]

    @property
    def _client(self) -> Any:
        return self._repos.client

    @property
    def _codec(self) -> _Codec:
        return self._repos.codec

    def put(self, data: dict[str, Any], *, if_new: bool = False) -> bool:
        """Put an item; with ``if_new`` return ``False`` when the key already exists."""
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": self._codec.to_item(data)}
        if if_new:
            kwargs["ConditionExpression"] = "attribute_not_exists(#k)"
            kwargs["ExpressionAttributeNames"] = {"#k": self.key}
        try:
            self._client.put_item(**kwargs)
        except ClientError as exc:
            if if_new and error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def replace_existing(self, data: dict[str, Any]) -> bool:
        """Overwrite an existing item; ``False`` if there was none."""
        try:
            self._client.put_item(
                TableName=self.name,
                Item=self._codec.to_item(data),
                ConditionExpression="attribute_exists(#k)",
                ExpressionAttributeNames={"#k": self.key},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        resp = self._client.get_item(TableName=self.name, Key={self.key: {"S": key}}, ConsistentRead=True)
        item = resp.get("Item")
        return self._codec.from_item(item) if item else None

    def delete(self, key: str) -> None:
        self._client.delete_item(TableName=self.name, Key={self.key: {"S": key}})

    def update(
        self,
        key: str,
        *,
        set_: dict[str, Any] | None = None,
        remove: Sequence[str] = (),
        condition: str | None = None,
    ) -> bool:
        """SET (``None`` means REMOVE) and REMOVE attributes of an existing item.

        ``condition`` may refer to the i-th SET attribute and value as ``#si`` /
        ``:si``. Returns ``False`` when the item is missing or the condition fails.
        """
        names: dict[str, str] = {"#key": self.key}
        vals: dict[str, Any] = {}
        sets: list[str] = []
        removes = list(remove)
        for i, (attr, value) in enumerate((set_ or {}).items()):
            if value is None:
                removes.append(attr)
                continue
            names[f"#s{i}"] = attr
            vals[f":s{i}"] = self._codec.value(value)
            sets.append(f"#s{i} = :s{i}")
        rems = []
        for j, attr in enumerate(dict.fromkeys(removes)):
            names[f"#r{j}"] = attr
            rems.append(f"#r{j}")
        parts = (["SET " + ", ".join(sets)] if sets else []) + (["REMOVE " + ", ".join(rems)] if rems else [])
        if not parts:
            return True
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": {self.key: {"S": key}},
            "UpdateExpression": " ".join(parts),
            "ExpressionAttributeNames": names,
            "ConditionExpression": "attribute_exists(#key)" + (f" AND ({condition})" if condition else ""),
        }
        if vals:
            kwargs["ExpressionAttributeValues"] = vals
        try:
            self._client.update_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def query(
        self,
        index: str,
        partition: str,
        value: str,
        *,
        sort_from: str | None = None,
        sort_to: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of a GSI partition, optionally with the sort key in ``[from, to)``."""
        sort_attr = next(s for (n, _p, s) in TABLES[self.short_name][1] if n == index)
        names = {"#p": partition}
        vals = {":p": {"S": value}}
        cond = "#p = :p"
        if sort_attr and sort_from is not None and sort_to is not None:
            names["#s"] = sort_attr
            vals[":a"] = {"S": sort_from}
            vals[":b"] = {"S": sort_to}
            cond += " AND #s BETWEEN :a AND :b"
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": cond,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals,
            "ScanIndexForward": not descending,
        }
        if limit:
            kwargs["Limit"] = limit
        while True:
            resp = self._client.query(**kwargs)
            for item in resp.get("Items", []):
                data = self._codec.from_item(item)
                # BETWEEN is inclusive; the ports use half-open ranges.
                if sort_attr and sort_to is not None and data.get(sort_attr, "") >= sort_to:
                    continue
                yield data
            last = resp.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def in_range(self, attr: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Items whose time ``attr`` lies in ``[start, end)``: by-day index queries
        for short ranges, one filtered scan for long ones."""
        lo, hi = to_db_time(start), to_db_time(end)
        assert lo is not None and hi is not None
        if end <= start:
            return []
        days = _days(start, end)
        if len(days) <= MAX_DAY_QUERIES:
            out: list[dict[str, Any]] = []
            for day in days:
                out.extend(self.query("by_day", "day", day, sort_from=lo, sort_to=hi))
            return out
        return [i for i in self.scan() if lo <= i.get(attr, "") < hi]

    def scan(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            resp = self._client.scan(**kwargs)
            for item in resp.get("Items", []):
                yield self._codec.from_item(item)
            last = resp.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def count(self) -> int:
        total = 0
        kwargs: dict[str, Any] = {"TableName": self.name, "Select": "COUNT"}
        while True:
            resp = self._client.scan(**kwargs)
            total += int(resp.get("Count", 0))
            last = resp.get("LastEvaluatedKey")
            if not last:
                return total
            kwargs["ExclusiveStartKey"] = last

    def batch_get(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.name: {"Keys": [{self.key: {"S": k}} for k in unique[start : start + 100]]}
            }
            while request:
                resp = self._client.batch_get_item(RequestItems=request)
                out.extend(self._codec.from_item(i) for i in resp.get("Responses", {}).get(self.name, []))
                request = resp.get("UnprocessedKeys") or {}
        return out


class _Repo:
    table_name = ""

    def __init__(self, repos: DynamoDbRepositories) -> None:
        self._repos = repos
        self._t = _Table(repos, self.table_name)


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


#: Ranges longer than this many days are read with one filtered scan instead of
#: one ``by_day`` query per day (dashboards ask for "all time" from 1970).
MAX_DAY_QUERIES = 92


def _days(start: datetime, end: datetime) -> list[str]:
    """The UTC days touched by ``[start, end)``."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    n = (last - first).days + 1
    return [(first + timedelta(days=i)).isoformat() for i in range(max(0, n))]


# ------------------------------------------------------------------ customers


class DynamoDbCustomers(_Repo):
    table_name = "customers"

    def add(self, customer: Customer) -> None:
        self._check_loyalty(customer)
        if not self._t.put(_customer_item(customer), if_new=True):
            raise ConflictError(f"customer {customer.customer_id} already exists")

    def get(self, customer_id: str) -> Customer:
        item = self._t.get(customer_id)
        if item is None:
            raise NotFoundError(f"no customer {customer_id}")
        return _customer(item)

    def update(self, customer: Customer) -> None:
        self._check_loyalty(customer)
        if not self._t.replace_existing(_customer_item(customer)):
            raise NotFoundError(f"no customer {customer.customer_id}")

    def _check_loyalty(self, customer: Customer) -> None:
        # Best effort (a GSI read is eventually consistent); the local backend
        # enforces this with a UNIQUE constraint.
        if customer.loyalty_id:
            other = self.find_by_loyalty_id(customer.loyalty_id)
            if other is not None and other.customer_id != customer.customer_id:
                raise ConflictError(f"loyalty id {customer.loyalty_id} belongs to another customer")

    def delete(self, customer_id: str) -> None:
        self._t.delete(customer_id)

    def list(self, search: str | None = None, limit: int = 1000) -> list[Customer]:
        customers = [_customer(i) for i in self._t.scan()]
        if search:
            needle = search.strip().lower()
            customers = [
                c
                for c in customers
                if needle in c.name.lower()
                or needle in (c.email or "").lower()
                or needle in (c.loyalty_id or "").lower()
                or c.customer_id == search.strip()
            ]
        customers.sort(key=lambda c: c.name)
        return customers[:limit]

    def find_by_loyalty_id(self, loyalty_id: str) -> Customer | None:
        for item in self._t.query("by_loyalty", "loyalty_id", loyalty_id):
            return _customer(item)
        return None

    def count(self) -> int:
        return self._t.count()


# ---------------------------------------------------------------------- faces


class DynamoDbFaces(_Repo):
    table_name = "faces"

    def __init__(self, repos: DynamoDbRepositories) -> None:
        super().__init__(repos)

    def add(self, face: Face) -> None:
        if not self._t.put(self._item(face), if_new=True):
            raise ConflictError(f"face {face.face_id} already exists")

    def get(self, face_id: str) -> Face:
        item = self._t.get(face_id)
        if item is None:
            raise NotFoundError(f"no face {face_id}")
        return _face(item)

    def update(self, face: Face) -> None:
        if not self._t.replace_existing(self._item(face)):
            raise NotFoundError(f"no face {face.face_id}")

    def delete(self, face_id: str) -> None:
        self._t.delete(face_id)

    def by_customer(self, customer_id: str) -> list[Face]:
        return [_face(i) for i in self._t.query("by_customer", "customer_id", customer_id)]

    def count_templates(self, customer_id: str) -> int:
        # Reads the customer's partition of the GSI, which grows with every
        # visit photo; a counter attribute on the customer would make it O(1).
        items = self._t.query("by_customer", "customer_id", customer_id)
        return sum(1 for item in items if item.get("index_face_id"))

    def by_pending(self, pending_id: str) -> list[Face]:
        return [_face(i) for i in self._t.query("by_pending", "pending_id", pending_id)]

    def by_status(self, status: FaceStatus) -> list[Face]:
        return [_face(i) for i in self._t.query("by_status", "status", status.value)]

    def by_index_face_ids(self, index_face_ids: Sequence[str]) -> dict[str, Face]:
        out: dict[str, Face] = {}
        for index_face_id in dict.fromkeys(index_face_ids):
            for item in self._t.query("by_index_face", "index_face_id", index_face_id):
                out[index_face_id] = _face(item)
        return out

    def _item(self, face: Face) -> dict[str, Any]:
        item = _face_item(face)
        if face.status is FaceStatus.PENDING:
            # Unapproved crops must not outlive their pending identity.
            item["ttl"] = _epoch(face.captured_at + self._repos.pending_ttl + TTL_GRACE)
        return item


# --------------------------------------------------------------------- visits


class DynamoDbVisits(_Repo):
    table_name = "visits"

    def add(self, visit: Visit) -> None:
        self._t.put(_visit_item(visit))

    def latest_for_customer(self, customer_id: str) -> Visit | None:
        visits = self.by_customer(customer_id)
        return max(visits, key=lambda v: v.last_seen_at) if visits else None

    def extend(self, visit_id: str, last_seen_at: datetime) -> None:
        self._t.update(
            visit_id,
            set_={"last_seen_at": to_db_time(last_seen_at)},
            condition="#s0 < :s0",
        )

    def by_customer(self, customer_id: str) -> list[Visit]:
        return [_visit(i) for i in self._t.query("by_customer", "customer_id", customer_id)]

    def recent_for_customer(self, customer_id: str, limit: int) -> list[Visit]:
        return sorted(self.by_customer(customer_id), key=lambda v: v.started_at, reverse=True)[:limit]

    def between(self, start: datetime, end: datetime) -> list[Visit]:
        return sorted(
            (_visit(i) for i in self._t.in_range("started_at", start, end)), key=lambda v: v.started_at
        )

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int:
        n = 0
        for visit in self.by_customer(from_customer_id):
            n += self._t.update(visit.visit_id, set_={"customer_id": to_customer_id})
        return n

    def delete_by_customer(self, customer_id: str) -> int:
        visits = self.by_customer(customer_id)
        for visit in visits:
            self._t.delete(visit.visit_id)
        return len(visits)


# -------------------------------------------------------------------- pending


class DynamoDbPending(_Repo):
    table_name = "pending"

    def add(self, pending: PendingIdentity) -> None:
        if not self._t.put(_pending_item(pending), if_new=True):
            raise ConflictError(f"pending identity {pending.pending_id} already exists")

    def get(self, pending_id: str) -> PendingIdentity:
        item = self._t.get(pending_id)
        if item is None:
            raise NotFoundError(f"no pending identity {pending_id}")
        return _pending(item)

    def update(self, pending: PendingIdentity) -> None:
        if not self._t.replace_existing(_pending_item(pending)):
            raise NotFoundError(f"no pending identity {pending.pending_id}")

    def delete(self, pending_id: str) -> None:
        self._t.delete(pending_id)

    def list(self, status: PendingStatus | None = PendingStatus.PENDING) -> list[PendingIdentity]:
        if status is None:
            items = [_pending(i) for i in self._t.scan()]
            return sorted(items, key=lambda p: p.last_seen_at, reverse=True)
        return [_pending(i) for i in self._t.query("by_status", "status", status.value, descending=True)]

    def expired(self, now: datetime) -> builtins.list[PendingIdentity]:
        items = [p for p in self.list(PendingStatus.PENDING) if p.expires_at < now]
        return sorted(items, key=lambda p: p.expires_at)


# --------------------------------------------------------------- transactions


class DynamoDbTransactions(_Repo):
    table_name = "transactions"

    def add(self, transaction: Transaction) -> bool:
        return self._t.put(_transaction_item(transaction), if_new=True)

    def by_customer(self, customer_id: str) -> list[Transaction]:
        return [_transaction(i) for i in self._t.query("by_customer", "customer_id", customer_id)]

    def between(self, start: datetime, end: datetime) -> list[Transaction]:
        return sorted(
            (_transaction(i) for i in self._t.in_range("occurred_at", start, end)),
            key=lambda t: t.occurred_at,
        )

    def link(self, transaction_id: str, customer_id: str | None) -> None:
        if not self._t.update(transaction_id, set_={"customer_id": customer_id}):
            raise NotFoundError(f"no transaction {transaction_id}")

    def reassign(self, from_customer_id: str, to_customer_id: str) -> int:
        n = 0
        for t in self.by_customer(from_customer_id):
            n += self._t.update(t.transaction_id, set_={"customer_id": to_customer_id})
        return n

    def unlink_customer(self, customer_id: str) -> int:
        # The sale stays (bookkeeping); the link and the identifying loyalty id go.
        n = 0
        for t in self.by_customer(customer_id):
            n += self._t.update(t.transaction_id, remove=("customer_id", "loyalty_id"))
        return n


# --------------------------------------------------------------------- events


class DynamoDbEvents(_Repo):
    table_name = "events"

    def __init__(self, repos: DynamoDbRepositories) -> None:
        super().__init__(repos)
        self._dead = _Table(repos, "dead_letters")

    def is_processed(self, event_id: str) -> bool:
        return self._t.get(event_id) is not None

    def record(
        self,
        event: FaceEvent,
        crop_key: str | None,
        result_outcome: str,
        customer_id: str | None,
        pending_id: str | None,
        similarity: float | None,
    ) -> bool:
        item = {
            "event_id": event.event_id,
            "feed": FEED,
            "received_at": to_db_time(datetime.now(UTC)),
            "captured_at": to_db_time(event.captured_at),
            "store_id": event.store_id,
            "camera_id": event.camera_id,
            "zone": event.zone,
            "track_id": event.track_id,
            "detector": event.detector,
            "confidence": float(event.confidence),
            "bbox": json.dumps(event.bbox.to_dict()),
            "outcome": result_outcome,
            "crop_key": crop_key,
            "customer_id": customer_id,
            "pending_id": pending_id,
            "similarity": similarity,
        }
        return self._t.put(item, if_new=True)

    def recent(
        self,
        limit: int = 100,
        camera_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> list[SeenEvent]:
        lo = to_db_time(since) if since else None
        rows: list[dict[str, Any]] = []
        for item in self._t.query("by_feed", "feed", FEED, descending=True):
            if lo and item["captured_at"] < lo:
                break
            if camera_id and item.get("camera_id") != camera_id:
                continue
            if outcome and item.get("outcome") != outcome:
                continue
            rows.append(item)
            if len(rows) >= limit:
                break
        ids = [r["customer_id"] for r in rows if r.get("customer_id")]
        names = {c["customer_id"]: c["name"] for c in self._repos.customers._t.batch_get(ids)}
        return [
            SeenEvent(
                event_id=r["event_id"],
                captured_at=_req_time(r["captured_at"]),
                store_id=r["store_id"],
                camera_id=r["camera_id"],
                zone=r["zone"],
                outcome=r["outcome"],
                crop_key=r.get("crop_key"),
                customer_id=r.get("customer_id"),
                customer_name=names.get(r.get("customer_id") or ""),
                pending_id=r.get("pending_id"),
                similarity=r.get("similarity"),
            )
            for r in rows
        ]

    def _rewrite(self, index: str, attr: str, value: str, **changes: Any) -> int:
        n = 0
        for item in list(self._t.query(index, attr, value)):
            n += self._t.update(item["event_id"], **changes)
        return n

    def forget_customer(self, customer_id: str) -> int:
        return self._rewrite(
            "by_customer",
            "customer_id",
            customer_id,
            set_={"outcome": "erased"},
            remove=("customer_id", "crop_key", "similarity"),
        )

    def forget_pending(self, pending_id: str) -> int:
        return self._rewrite(
            "by_pending",
            "pending_id",
            pending_id,
            set_={"outcome": "erased"},
            remove=("pending_id", "crop_key", "similarity"),
        )

    def attribute_pending(self, pending_id: str, customer_id: str) -> int:
        """Attribute a pending identity's events to the customer it became."""
        return self._rewrite("by_pending", "pending_id", pending_id, set_={"customer_id": customer_id})

    def reassign_customer(self, from_customer_id: str, to_customer_id: str) -> int:
        return self._rewrite(
            "by_customer", "customer_id", from_customer_id, set_={"customer_id": to_customer_id}
        )

    def move_crop(self, event_id: str, crop_key: str) -> None:
        self._t.update(event_id, set_={"crop_key": crop_key})

    def add_dead_letter(self, letter: DeadLetter) -> None:
        # A DynamoDB item holds at most 400 KB; keep the head of larger payloads.
        payload = letter.payload[:MAX_DEAD_LETTER_PAYLOAD]
        self._dead.put(
            {
                "dead_letter_id": letter.dead_letter_id,
                "feed": FEED,
                "received_at": to_db_time(letter.received_at),
                "source": letter.source,
                "reason": letter.reason,
                "error_type": letter.error_type,
                "event_id": letter.event_id,
                "payload": payload,
                "payload_bytes": len(letter.payload),
            }
        )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        out = []
        for r in self._dead.query("by_feed", "feed", FEED, descending=True):
            out.append(
                DeadLetter(
                    dead_letter_id=r["dead_letter_id"],
                    received_at=_req_time(r["received_at"]),
                    source=r["source"],
                    reason=r["reason"],
                    error_type=r["error_type"],
                    event_id=r.get("event_id"),
                    payload=bytes(r.get("payload", b"")),
                )
            )
            if len(out) >= limit:
                break
        return out


# ---------------------------------------------------------------------- audit


class DynamoDbAudit(_Repo):
    table_name = "audit"

    def append(self, entry: AuditEntry) -> None:
        self._t.put(
            {
                "audit_id": entry.audit_id,
                "feed": FEED,
                "at": to_db_time(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "subject_id": entry.subject_id,
                "details": json.dumps(entry.details, sort_keys=True, default=str),
            }
        )

    def list(self, subject_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        if subject_id:
            items = self._t.query("by_subject", "subject_id", subject_id, descending=True)
        else:
            items = self._t.query("by_feed", "feed", FEED, descending=True)
        out = []
        for r in items:
            out.append(
                AuditEntry(
                    audit_id=r["audit_id"],
                    at=_req_time(r["at"]),
                    actor=r["actor"],
                    action=r["action"],
                    subject_id=r["subject_id"],
                    details=json.loads(r["details"]),
                )
            )
            if len(out) >= limit:
                break
        return out


class DynamoDbTokens(_Repo):
    table_name = "tokens"

    def consume(self, nonce: str, expires_at: datetime) -> bool:
        return self._t.put(
            {"nonce": nonce, "expires_at": to_db_time(expires_at), "ttl": _epoch(expires_at + TTL_GRACE)},
            if_new=True,
        )


class DynamoDbAnonymousSightings(_Repo):
    table_name = "anonymous_sightings"

    def add(self, sighting: AnonymousSighting) -> bool:
        return self._t.put(
            {
                "sighting_id": sighting.sighting_id,
                "day": _day(sighting.first_seen_at),
                "store_id": sighting.store_id,
                "camera_id": sighting.camera_id,
                "zone": sighting.zone,
                "first_seen_at": to_db_time(sighting.first_seen_at),
                "last_seen_at": to_db_time(sighting.last_seen_at),
                "people": sighting.people,
            },
            if_new=True,
        )

    def extend(self, sighting_id: str, first_seen_at: datetime, last_seen_at: datetime) -> None:
        item = self._t.get(sighting_id)
        if not item:
            return
        first = min(_req_time(item["first_seen_at"]), first_seen_at)
        last = max(_req_time(item["last_seen_at"]), last_seen_at)
        # first_seen_at is the by_day index's sort key, and its day the partition key.
        self._t.update(
            sighting_id,
            set_={"first_seen_at": to_db_time(first), "day": _day(first), "last_seen_at": to_db_time(last)},
        )

    def delete(self, sighting_ids: Sequence[str]) -> int:
        for sighting_id in sighting_ids:
            self._t.delete(sighting_id)
        return len(sighting_ids)

    def between(self, start: datetime, end: datetime) -> list[AnonymousSighting]:
        items = self._t.in_range("first_seen_at", start, end)
        out = [
            AnonymousSighting(
                sighting_id=r["sighting_id"],
                store_id=r["store_id"],
                camera_id=r["camera_id"],
                zone=r["zone"],
                first_seen_at=_req_time(r["first_seen_at"]),
                last_seen_at=_req_time(r["last_seen_at"]),
                people=int(r.get("people", 1)),
            )
            for r in items
        ]
        return sorted(out, key=lambda s: s.first_seen_at)


class DynamoDbTracks(_Repo):
    table_name = "tracks"

    def get(self, store_id: str, camera_id: str, track_id: str) -> TrackLink | None:
        item = self._t.get(track_key(store_id, camera_id, track_id))
        return _track(item) if item else None

    def claim(self, link: TrackLink) -> TrackLink:
        # A conditional put: of two Lambdas deciding one track at once, one wins.
        if self._t.put(_track_item(link), if_new=True):
            return link
        stored = self.get(link.store_id, link.camera_id, link.track_id)
        return stored if stored is not None else link

    def put(self, link: TrackLink) -> None:
        self._t.put(_track_item(link))

    def forget(self, owner_id: str) -> int:
        # No index: the table holds only tracks of the last TRACK_TTL, so a scan is small.
        gone = [i for i in self._t.scan() if owner_id in (i.get("customer_id"), i.get("pending_id"))]
        for item in gone:
            self._t.delete(item["track_key"])
        return len(gone)

    def prune(self, before: datetime) -> int:
        cutoff = to_db_time(before)
        assert cutoff is not None
        gone = [i for i in self._t.scan() if i.get("last_seen_at", "") < cutoff]
        for item in gone:
            self._t.delete(item["track_key"])
        return len(gone)


# ------------------------------------------------------------------ container


class DynamoDbRepositories(AwsAdapter):
    """Every repository on DynamoDB. Implements ``core.ports.Repositories``.

    ``prefix`` is ``Settings.dynamodb_table_prefix``; ``pending_ttl`` sets the
    TTL of unapproved faces (``Settings.pending_ttl_days``).
    """

    service = "dynamodb"

    def __init__(
        self,
        *,
        prefix: str = "storelens",
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        pending_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.prefix = prefix
        self.pending_ttl = pending_ttl
        self._use_client(client=client, session=session, region=region, endpoint_url=endpoint_url)
        self._codec: _Codec | None = None
        self.customers = DynamoDbCustomers(self)
        self.faces = DynamoDbFaces(self)
        self.visits = DynamoDbVisits(self)
        self.pending = DynamoDbPending(self)
        self.transactions = DynamoDbTransactions(self)
        self.events = DynamoDbEvents(self)
        self.audit = DynamoDbAudit(self)
        self.tokens = DynamoDbTokens(self)
        self.anonymous = DynamoDbAnonymousSightings(self)
        self.tracks = DynamoDbTracks(self)

    @property
    def codec(self) -> _Codec:
        if self._codec is None:
            self._codec = _Codec()
        return self._codec

    def table_name(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Best effort: DynamoDB writes here are ordered and idempotent, not transactional."""
        yield

    def table_counts(self) -> dict[str, int]:
        """Item counts per table (a full scan each: for small stores and tests)."""
        return {name: _Table(self, name).count() for name in TABLES}

    def create_tables(self) -> None:
        """Create every table (on-demand, with GSIs and TTL); existing ones are kept.

        The deployed stack creates the tables from ``infra/template.yaml``; this
        is for moto, the live-mode script and tests.
        """
        for name, (key, indexes, ttl) in TABLES.items():
            attrs = {key} | {p for _n, p, _s in indexes} | {s for _n, _p, s in indexes if s}
            kwargs: dict[str, Any] = {
                "TableName": self.table_name(name),
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attrs)],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if indexes:
                kwargs["GlobalSecondaryIndexes"] = [
                    {
                        "IndexName": n,
                        "KeySchema": [{"AttributeName": p, "KeyType": "HASH"}]
                        + ([{"AttributeName": s, "KeyType": "RANGE"}] if s else []),
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for n, p, s in indexes
                ]
            try:
                self.client.create_table(**kwargs)
            except ClientError as exc:
                if error_code(exc) == "ResourceInUseException":
                    continue
                raise BackendError(f"cannot create table {kwargs['TableName']}: {exc}") from exc
            self.client.get_waiter("table_exists").wait(TableName=self.table_name(name))
            if ttl:
                self.client.update_time_to_live(
                    TableName=self.table_name(name),
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl},
                )


# ---------------------------------------------------------------- item mapping


def _customer_item(c: Customer) -> dict[str, Any]:
    return {
        "customer_id": c.customer_id,
        "name": c.name,
        "email": c.email,
        "loyalty_id": c.loyalty_id,
        "consent": bool(c.consent),
        "consent_at": to_db_time(c.consent_at),
        "notes": c.notes,
        "created_at": to_db_time(c.created_at),
        "updated_at": to_db_time(c.updated_at),
    }


def _customer(r: dict[str, Any]) -> Customer:
    return Customer(
        customer_id=r["customer_id"],
        name=r["name"],
        email=r.get("email"),
        loyalty_id=r.get("loyalty_id"),
        consent=bool(r.get("consent", False)),
        consent_at=from_db_time(r.get("consent_at")),
        notes=r.get("notes", ""),
        created_at=_req_time(r["created_at"]),
        updated_at=_req_time(r["updated_at"]),
    )


def _face_item(f: Face) -> dict[str, Any]:
    return {
        "face_id": f.face_id,
        "event_id": f.event_id,
        "crop_key": f.crop_key,
        "captured_at": to_db_time(f.captured_at),
        "camera_id": f.camera_id,
        "zone": f.zone,
        "status": f.status.value,
        "index_face_id": f.index_face_id,
        "customer_id": f.customer_id,
        "pending_id": f.pending_id,
        "similarity": f.similarity,
    }


def _face(r: dict[str, Any]) -> Face:
    return Face(
        face_id=r["face_id"],
        event_id=r.get("event_id"),
        crop_key=r["crop_key"],
        captured_at=_req_time(r["captured_at"]),
        camera_id=r["camera_id"],
        zone=r["zone"],
        status=FaceStatus(r["status"]),
        index_face_id=r.get("index_face_id"),
        customer_id=r.get("customer_id"),
        pending_id=r.get("pending_id"),
        similarity=r.get("similarity"),
    )


def _visit_item(v: Visit) -> dict[str, Any]:
    return {
        "visit_id": v.visit_id,
        "customer_id": v.customer_id,
        "store_id": v.store_id,
        "camera_id": v.camera_id,
        "zone": v.zone,
        "started_at": to_db_time(v.started_at),
        "day": _day(v.started_at),
        "last_seen_at": to_db_time(v.last_seen_at),
        "event_id": v.event_id,
        "similarity": v.similarity,
    }


def _visit(r: dict[str, Any]) -> Visit:
    return Visit(
        visit_id=r["visit_id"],
        customer_id=r["customer_id"],
        store_id=r["store_id"],
        camera_id=r["camera_id"],
        zone=r["zone"],
        started_at=_req_time(r["started_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
        event_id=r.get("event_id"),
        similarity=r.get("similarity"),
    )


def _pending_item(p: PendingIdentity) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pending_id": p.pending_id,
        "kind": p.kind.value,
        "status": p.status.value,
        "store_id": p.store_id,
        "created_at": to_db_time(p.created_at),
        "last_seen_at": to_db_time(p.last_seen_at),
        "expires_at": to_db_time(p.expires_at),
        "face_count": p.face_count,
        "suggested_customer_id": p.suggested_customer_id,
        "suggested_similarity": p.suggested_similarity,
        "decided_at": to_db_time(p.decided_at),
        "decided_by": p.decided_by,
        "customer_id": p.customer_id,
    }
    if p.status in (
        PendingStatus.PENDING,
        PendingStatus.EXPIRED,
        PendingStatus.REJECTED,
        PendingStatus.NOT_A_CUSTOMER,
    ):
        # Undecided or refused identities are not kept forever; approved and
        # merged ones are the consent record and stay.
        item["ttl"] = _epoch(p.expires_at + TTL_GRACE)
    return item


def _pending(r: dict[str, Any]) -> PendingIdentity:
    return PendingIdentity(
        pending_id=r["pending_id"],
        kind=PendingKind(r["kind"]),
        status=PendingStatus(r["status"]),
        store_id=r["store_id"],
        created_at=_req_time(r["created_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
        expires_at=_req_time(r["expires_at"]),
        face_count=int(r.get("face_count", 0)),
        suggested_customer_id=r.get("suggested_customer_id"),
        suggested_similarity=r.get("suggested_similarity"),
        decided_at=from_db_time(r.get("decided_at")),
        decided_by=r.get("decided_by"),
        customer_id=r.get("customer_id"),
    )


def _transaction_item(t: Transaction) -> dict[str, Any]:
    return {
        "transaction_id": t.transaction_id,
        "store_id": t.store_id,
        "occurred_at": to_db_time(t.occurred_at),
        "day": _day(t.occurred_at),
        "amount_cents": int(t.amount_cents),
        "currency": t.currency,
        "loyalty_id": t.loyalty_id,
        "customer_id": t.customer_id,
        "camera_id": t.camera_id,
    }


def _transaction(r: dict[str, Any]) -> Transaction:
    return Transaction(
        transaction_id=r["transaction_id"],
        store_id=r["store_id"],
        occurred_at=_req_time(r["occurred_at"]),
        amount_cents=int(r["amount_cents"]),
        currency=r.get("currency", "EUR"),
        loyalty_id=r.get("loyalty_id"),
        customer_id=r.get("customer_id"),
        camera_id=r.get("camera_id"),
    )


def _track_item(t: TrackLink) -> dict[str, Any]:
    return {
        "track_key": t.key,
        "store_id": t.store_id,
        "camera_id": t.camera_id,
        "track_id": t.track_id,
        "customer_id": t.customer_id,
        "pending_id": t.pending_id,
        "first_seen_at": to_db_time(t.first_seen_at),
        "last_seen_at": to_db_time(t.last_seen_at),
        "ttl": _epoch(t.last_seen_at + TRACK_TTL),
    }


def _track(r: dict[str, Any]) -> TrackLink:
    return TrackLink(
        store_id=r["store_id"],
        camera_id=r["camera_id"],
        track_id=r["track_id"],
        customer_id=r.get("customer_id"),
        pending_id=r.get("pending_id"),
        first_seen_at=_req_time(r["first_seen_at"]),
        last_seen_at=_req_time(r["last_seen_at"]),
    )
