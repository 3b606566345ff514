"""What a leaver's read-back (``verify_revoked``) leads to: stored as evidence; when access
remains, removed and read back again, up to ``MAX_VERIFY_ROUNDS``; after the last round the
read-back is dead-lettered with what it found, so it shows in ``provisioner ops list --dead``,
in the metrics (``provisioner_readbacks_failed``) and as an alert, not only in a log line."""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client import Counter

from provisioner.audit.service import Entry
from provisioner.evidence import checks
from provisioner.queue.jobs import Job
from provisioner.queue.known import KnownState
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.targets.contract import AccountState, OpKind

log = logging.getLogger("provisioner.queue.worker")  # the worker's log, as before

MAX_VERIFY_ROUNDS = 3
READBACKS_FAILED = Counter("provisioner_readbacks_failed_total",
                           "Leavers' read-backs that still found access after the last round (dead-lettered)",
                           ["target"])


def record_check(known: KnownState, job: Job, state: AccountState | None, target: str, now: datetime,
                 audit: list[Entry], *, revoke_sessions: bool) -> tuple[str, str] | None:
    """Store a read-back; when access remains, remove it and read back again, up to
    ``MAX_VERIFY_ROUNDS``, then dead-letter the read-back with what it found (listed by
    ``ops list --dead``, counted in the metrics, alerted). Returns the read-back's status
    and note when it did not verify the revocation."""
    session = known.session
    verified, readback = checks.readback_of(job.account_id, state, job.verify_group_ids)
    remaining, enabled = readback["groups_remaining"], bool(readback["enabled"])
    # Stored with the incidents it opens (access back after a verified revocation) or closes.
    checks.record(session, identity_id=job.identity_id, subject=job.employee_id or job.identity_id,
                  target=target, plan_id=job.plan_id, verified=verified, readback=readback, now=now,
                  audit=audit)
    if verified:
        return None
    rounds = int(job.payload.get("round", 1))
    found = checks.access_left(readback)
    if rounds >= MAX_VERIFY_ROUNDS:
        reason = f"access remains after {rounds} rounds: {found}"
        READBACKS_FAILED.labels(target).inc()
        audit.append(Entry("revocation.unverified", job.employee_id or job.identity_id, {
            "op_id": job.op_id, "plan_id": job.plan_id, "target": target, "rounds": rounds, "reason": reason}))
        log.error("read-back of %s in %s dead-lettered: %s", job.employee_id or job.identity_id, target, reason,
                  extra={"op_id": job.op_id, "target": target, "alert": "revocation_unverified"})
        return OpStatus.DEAD, reason
    # Access found on read-back (changed behind the service's back, or a failed step):
    # remove it, then read back again.
    def add(kind: OpKind, group: str | None, status: str = OpStatus.PENDING, payload=None) -> None:
        session.add(Operation(plan_id=job.plan_id, identity_id=job.identity_id, target=target,
                              kind=kind.value, group_key=group, payload=payload or {"reason": "remediation"},
                              priority=Priority.LEAVER, status=status, attempts=0,
                              next_attempt_at=now, created_at=now))
    if enabled:
        add(OpKind.DISABLE_ACCOUNT, None)
        if revoke_sessions:
            add(OpKind.REVOKE_SESSIONS, None)
    for group in remaining:
        known.add_membership(job.identity_id, target, group, now)
        add(OpKind.REMOVE_MEMBER, group)
    add(OpKind.VERIFY_REVOKED, None, OpStatus.WAITING, {"reason": "read back again", "round": rounds + 1})
    return OpStatus.SUCCEEDED, (f"access remains (round {rounds} of {MAX_VERIFY_ROUNDS}): {found}; "
                                "removing it and reading back again")
