"""InlineWorkflow: the approval state machine, kept in SQLite, run in-process.

It mirrors the Step Functions definition in ``infra/statemachine``: *start*
records that an approval is waiting and sends the notification; *submit*
records the decision and finishes (unless the decision keeps the identity
pending, as "not this person" does); *cancel* ends it without a decision.
"""

from __future__ import annotations

import json

from core.errors import ConflictError, NotFoundError
from core.local.sqlite import SqliteRepositories, to_db_time
from core.models import PendingIdentity, PendingStatus, utcnow
from core.ports import ApprovalCallbacks, Decision

WAITING, DONE, CANCELLED = "waiting", "done", "cancelled"


class InlineWorkflow:
    """Implements ``core.ports.ApprovalWorkflow`` on the local database."""

    def __init__(self, repos: SqliteRepositories, approvals: ApprovalCallbacks) -> None:
        self.repos = repos
        self.approvals = approvals

    def start(self, pending: PendingIdentity) -> str:
        conn = self.repos.connection()
        cur = conn.execute(
            "INSERT OR IGNORE INTO approvals (pending_id, state, started_at) VALUES (?, ?, ?)",
            (pending.pending_id, WAITING, to_db_time(utcnow())),
        )
        if cur.rowcount == 1:
            self.approvals.notify(pending.pending_id)
        return f"inline:{pending.pending_id}"

    def state(self, pending_id: str) -> str:
        row = (
            self.repos.connection()
            .execute("SELECT state FROM approvals WHERE pending_id=?", (pending_id,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no approval workflow for {pending_id}")
        return str(row[0])

    def submit(self, pending_id: str, decision: Decision) -> None:
        if self.state(pending_id) != WAITING:
            raise ConflictError(f"the approval for {pending_id} is no longer waiting")
        self.approvals.record_decision(pending_id, decision)
        if self.repos.pending.get(pending_id).status is not PendingStatus.PENDING:
            self._finish(pending_id, DONE, {"action": decision.action, "actor": decision.actor})

    def cancel(self, pending_id: str, reason: str) -> None:
        self._finish(pending_id, CANCELLED, {"reason": reason})

    def heartbeat(self, pending_id: str) -> bool:
        """Nothing times out in-process: the retention sweep expires old identities."""
        return False

    def forget(self, pending_id: str) -> None:
        self.repos.connection().execute("DELETE FROM approvals WHERE pending_id=?", (pending_id,))

    def _finish(self, pending_id: str, state: str, decision: dict[str, str]) -> None:
        self.repos.connection().execute(
            "UPDATE approvals SET state=?, finished_at=?, decision=? WHERE pending_id=? AND state=?",
            (state, to_db_time(utcnow()), json.dumps(decision), pending_id, WAITING),
        )
