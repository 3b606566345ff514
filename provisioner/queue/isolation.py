"""One bad operation never stops a worker round, and a busy database never throws one away.

- **Building the calls** (``build_jobs``) for a claimed batch: if it raises, each operation is
  built alone (in a savepoint of the claim's transaction) and the one that raises (bad data for
  one person, a kind this version does not know, a bug) is dead-lettered with the reason and
  an ``alert: dead_letter`` log line; the rest of the round goes on.
- **Recording the outcomes**: the round's target calls are done, so recording them is never
  given up for a busy database. An error that says the database was busy or unavailable
  (``db.is_transient``: the SQLite write slot not given in time, a lock, a deadlock, a lost
  connection) is retried with back-off, each wait logged, for up to the lease
  (``PROVISIONER_LEASE_SECONDS``); only after that does the lease's redo take over (idempotent).
  Any other error: each outcome is recorded alone, and one that still fails is dead-lettered
  with the reason (and what the target had answered), so the others are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database, is_transient
from provisioner.identities.service import Naming
from provisioner.queue import repository as queue
from provisioner.queue.jobs import Job, build_jobs
from provisioner.queue.models import Operation, OpStatus

if TYPE_CHECKING:  # (annotations only: the worker imports this module)
    from provisioner.queue.worker import RoundReport, Settled

log = logging.getLogger("provisioner.queue.worker")
T = TypeVar("T")
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.2, 5.0


def reason_of(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {' '.join(str(cause).split()) or repr(cause)}"[:1000]


# -- building ----------------------------------------------------------------------------------
def build_isolated(session: Session, ops: list[queue.Claimed], naming: Naming) -> list[Job]:
    """``build_jobs`` for the batch; if it raises, operation by operation (see module doc)."""
    if not ops:
        return []
    try:
        with session.begin_nested():
            return build_jobs(session, ops, naming)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("building the calls of %d claimed operations raised (%s); building them one by one",
                    len(ops), reason_of(exc))
    jobs: list[Job] = []
    for op in ops:
        try:
            with session.begin_nested():
                jobs.extend(build_jobs(session, [op], naming))
        except Exception as exc:
            if is_transient(exc):
                raise
            log.debug("building operation %s raised", op.id, exc_info=exc)
            row = queue.get(session, op.id)
            if row is not None:
                _dead(session, row, utcnow(), f"the call could not be prepared: {reason_of(exc)}")
    return jobs


def _dead(session: Session, op: Operation, now: datetime, reason: str, *,
          outcome: str | None = None, http_status: int | None = None) -> None:
    op.status, op.completed_at, op.lease_until, op.last_error = OpStatus.DEAD, now, None, reason[:2000]
    queue.fail_dependents(session, [op.id], now, "an operation it depends on failed")
    queue.release_verifications(session, [op.plan_id] if op.plan_id is not None else [], now)
    append(session, "operation.attempt", op.identity_id, op_id=op.id, plan_id=op.plan_id, target=op.target,
           kind=op.kind, group=op.group_key, attempt=op.attempts, outcome=outcome or "error", action="dead",
           status=op.status, detail=op.last_error[:500], http_status=http_status)
    log.error("operation %s (%s %s on %s) dead-lettered: %s", op.id, op.kind, op.group_key or "", op.target,
              op.last_error, extra={"op_id": op.id, "target": op.target, "alert": "dead_letter"})


# -- recording ---------------------------------------------------------------------------------
def with_retry(fn: Callable[[], T], what: str, *, wait_seconds: float,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, tried again while the database is busy or unavailable, up to ``wait_seconds``."""
    start, tries, delay = time.monotonic(), 0, RETRY_FIRST_SECONDS
    while True:
        tries += 1
        try:
            result = fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            waited = time.monotonic() - start
            if waited + delay > wait_seconds:
                log.error("%s: not recorded after %d tries in %.1f s (%s); the operations run again once "
                          "their lease ends (idempotent)", what, tries, waited, reason_of(exc),
                          extra={"alert": "round_not_recorded"})
                raise
            log.warning("%s: the target calls are done but the database was busy (%s); recording again in "
                        "%.1f s (try %d, waited %.1f s of at most %.0f s)", what, reason_of(exc), delay,
                        tries, waited, wait_seconds)
            sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            continue
        if tries > 1:
            log.warning("%s: recorded on try %d, after waiting %.1f s for the database", what, tries,
                        time.monotonic() - start)
        return result


def record_round(db: Database, record: Callable[[RoundReport], set[str]], report: RoundReport, *,
                 worker_id: str, target: str, wait_seconds: float) -> set[str]:
    """Record a finished round (see module doc); returns the identities to plan again."""
    what = f"round of {len(report.settled)} outcome(s) on {target}"
    try:
        return with_retry(lambda: record(report), what, wait_seconds=wait_seconds)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("%s: recording raised (%s); recording each outcome alone", what, reason_of(exc))
    replan: set[str] = set()
    for s in report.settled:
        alone = replace(report, claimed=1, settled=[s], checks=[c for c in report.checks if c[0] is s.job])
        try:
            replan |= with_retry(lambda alone=alone: record(alone), f"outcome of operation {s.job.op_id}",
                                 wait_seconds=wait_seconds)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.debug("recording operation %s raised", s.job.op_id, exc_info=exc)
            _dead_after_call(db, s, worker_id, reason_of(exc), wait_seconds)
    return replan


def _dead_after_call(db: Database, s: Settled, worker_id: str, reason: str, wait_seconds: float) -> None:
    def dead() -> None:
        with db.transaction() as session:
            op = queue.get(session, s.job.op_id)
            if op is None or op.status != OpStatus.RUNNING or op.claimed_by != worker_id:
                return  # our lease ran out and someone else has it now
            answer = f"{s.result.outcome}: {s.result.detail}"
            _dead(session, op, utcnow(), f"its outcome could not be recorded ({reason}); the target had "
                  f"answered {answer}", outcome=s.result.outcome.value,
                  http_status=s.result.status_code)
    try:
        with_retry(dead, f"dead-lettering operation {s.job.op_id}", wait_seconds=wait_seconds)
    except Exception:
        log.exception("operation %s: could not be dead-lettered either; it runs again once its lease ends",
                      s.job.op_id, extra={"op_id": s.job.op_id, "alert": "dead_letter"})
