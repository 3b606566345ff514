"""What the planner records of its gate (``approvals_gate``): a request for each grant that
newly waits, withdrawn requests the policies no longer need, ended approvals of groups no longer
granted. Called by ``planner.service.plan_many`` in its transaction, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append_many
from provisioner.change_control import approvals_repository as repository
from provisioner.change_control.actors import TOKEN, actor
from provisioner.change_control.models import AccessRequest, RequestKind, RequestStatus
from provisioner.db import reserve_ids
from provisioner.identities.models import Identity

API_TRIGGER = "api:"  # plans asked for through the API by a token: "api:<token name>"


def live_decisions(session: Session, identity_ids: Sequence[str]) -> list[Any]:
    return repository.live_for(session, identity_ids)


def requester(trigger: str) -> str | None:
    """Who asked for the change that made this request: the API token (``token:<name>``), when
    a token did."""
    return actor(TOKEN, trigger.removeprefix(API_TRIGGER)) if trigger.startswith(API_TRIGGER) else None


def record(session: Session, planned: Sequence[tuple[Identity, str, Any]], now: datetime) -> None:
    """``planned``: (person, plan trigger, PlanResult with its gate) for each planned person."""
    rows: list[dict[str, Any]] = []
    entries: list[Entry] = []
    new = [(identity, trigger, result, wait) for identity, trigger, result in planned
           for wait in result.gate.waits if wait.request_id is None]
    for (identity, trigger, _result, wait), request_id in zip(new, reserve_ids(session, AccessRequest, len(new)),
                                                            strict=True):
        wait.request_id = request_id
        detail = {"policies": wait.policies}
        if wait.rule:
            detail["conflicts_with"] = [list(k) for k in wait.conflicts_with]
        rows.append({"id": request_id, "kind": wait.kind, "identity_id": identity.id, "target": wait.target,
                     "group_key": wait.group, "rule": wait.rule, "detail": detail, "fingerprint": wait.fingerprint,
                     "status": RequestStatus.PENDING, "trigger": trigger, "requested_by": requester(trigger),
                     "created_at": now})
        entries.append(Entry("approval.requested" if wait.kind == RequestKind.APPROVAL else "sod.flagged",
                             identity.employee_id or identity.id,
                             {"request_id": request_id, "target": wait.target, "group": wait.group,
                              "policies": wait.policies, "rule": wait.rule, "trigger": trigger,
                              "requested_by": requester(trigger)}))
    repository.insert(session, rows)
    for identity, _trigger, result in planned:
        gate = result.gate
        waiting = {(w.kind, w.target, w.group) for w in gate.waits}
        for row in gate.decisions:
            key = (row.target, row.group_key)
            if row.status == RequestStatus.PENDING and (row.kind, *key) not in waiting:
                row.status, row.decided_at = RequestStatus.WITHDRAWN, now
                row.comment = "no longer needed: the policies no longer grant it, or nothing conflicts"
            elif row.status in (RequestStatus.APPROVED, RequestStatus.REJECTED) and key not in gate.desired:
                row.status = RequestStatus.ENDED  # granted no more: a new grant asks again
            else:
                continue
            entries.append(Entry(f"{'approval' if row.kind == RequestKind.APPROVAL else 'sod'}.{row.status}",
                                 identity.employee_id or identity.id,
                                 {"request_id": row.id, "target": row.target, "group": row.group_key}))
        if gate.waits:
            result.diff["awaiting_approval"] = gate.as_diff()
    session.flush()
    append_many(session, entries)

