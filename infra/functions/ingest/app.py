"""Ingest function: the IoT rule on ``storelens/+/+/faces`` delivers one FaceEvent.

Bad events (schema, size, corrupt JPEG, face too small) are dead-lettered by
the ingest service and answered with a clear error, not raised: retrying them
cannot help. Anything else (a backend outage) is raised, so Lambda retries the
asynchronous invocation and finally parks it in the function's SQS dead-letter
queue; nothing acknowledged is lost, and ingest is idempotent on ``event_id``.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import ValidationError
from infra.functions.runtime import log_json, services


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    svc = services()
    payload = event if isinstance(event, (bytes, str)) else json.dumps(event).encode("utf-8")
    try:
        result = svc.ingest.ingest(payload, source="iot")
    except ValidationError as exc:
        log_json(msg="event rejected", error=type(exc).__name__, reason=str(exc))
        return {"status": "rejected", "error": type(exc).__name__, "reason": str(exc)}
    log_json(msg="event ingested", event_id=result.event_id, outcome=result.outcome.value)
    return {
        "status": "ok",
        "event_id": result.event_id,
        "outcome": result.outcome.value,
        "customer_id": result.customer_id,
        "pending_id": result.pending_id,
    }
