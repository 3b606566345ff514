"""The scheduled reconciliation (``provisioner serve``, every ``reconcile_minutes``): one at a
time across every process sharing the database.

Each ``serve`` process schedules the job; a run first takes the named lock ``reconcile``
(:meth:`provisioner.db.Database.named_lock`) without waiting: held by another process, the run
is skipped (logged at INFO). Holding it, the run is also skipped when a whole reconciliation
finished (a stored run, :mod:`.runs`, whatever started it; not a console "fix selected") less than
``SPACING`` of the interval ago: N processes then reconcile about once an interval between
them, not N times. The slack (the rest of the interval) keeps a process's own next run, which
comes one interval after its last *start*, from being skipped because that run *ended* later.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.planner.service import PlanningContext
from provisioner.reconcile import repository
from provisioner.reconcile.retry import ReadRetry
from provisioner.reconcile.runs import Keep
from provisioner.reconcile.service import ReconcileReport, reconcile
from provisioner.settings import Settings
from provisioner.targets.contract import Connector

log = logging.getLogger(__name__)

LOCK = "reconcile"
SPACING = 0.9  # of reconcile_minutes: the least time between two scheduled runs, across processes


async def scheduled_reconcile(db: Database, ctx: PlanningContext, connectors: dict[str, Connector],
                              settings: Settings) -> ReconcileReport | None:
    """Reconcile unless another process is at it or did it recently; None when skipped."""
    lock = db.named_lock(LOCK)
    if not await asyncio.to_thread(lock.acquire, 0):
        log.info("reconcile: skipped: another process is reconciling", extra={"skipped": "locked"})
        return None
    try:
        last = await asyncio.to_thread(_last_run, db)
        spacing = timedelta(minutes=settings.reconcile_minutes * SPACING)
        if last is not None and utcnow() - last < spacing:
            log.info("reconcile: skipped: the last run was recorded at %s, less than %.1f min ago",
                     last.isoformat(), spacing.total_seconds() / 60, extra={"skipped": "recent"})
            return None
        report = await reconcile(db, ctx, connectors, fix=settings.reconcile_fix,
                                 max_removals=settings.reconcile_max_removals,
                                 retry=ReadRetry.from_settings(settings), trigger="schedule",
                                 keep=Keep.from_settings(settings))
        log.info("reconcile: %d drift item(s), %d re-planned", len(report.drift), report.replanned)
        return report
    finally:
        await asyncio.to_thread(lock.release)


def _last_run(db: Database):
    with db.read() as session:
        return repository.last_run_at(session)
