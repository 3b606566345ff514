"""Group commit for HR intake: concurrent requests share one transaction.

Each request still gets its 202 only after the transaction holding its events has committed
(durable before the answer), but twenty requests arriving together cost one commit and one
lock of the audit chain's head instead of twenty. Requests stay all-or-nothing one by one.

Isolation: when a group's transaction fails, its requests are committed again one by one, so
only the request that cannot be stored fails (``StoreError``, a problem+json answer) and every
other request of the group is stored as if it had come alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from provisioner.db import Database
from provisioner.intake import service
from provisioner.intake.schemas import HREventIn, Receipt

log = logging.getLogger("provisioner.intake")


@dataclass
class StoreError(Exception):
    """This request's events could not be stored (nothing of it was); the others went on."""

    status: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def _store_error(exc: Exception) -> StoreError:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:300]
    if isinstance(exc, OperationalError):  # the database is unreachable or busy: worth a retry
        return StoreError(503, f"the database could not store the events now ({type(orig).__name__}); "
                               "nothing was stored: send the request again")
    return StoreError(500, f"the events could not be stored ({type(orig).__name__}: {first}); "
                           "nothing of this request was stored")


@dataclass
class _Pending:
    submission: service.Submission
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class IntakeWriter:
    def __init__(self, db: Database, *, max_events: int = 5000) -> None:
        self.db = db
        self.max_events = max_events
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, events: list[HREventIn], source: str) -> list[Receipt]:
        """Store the events durably; raises ConflictError or StoreError for this request only."""
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="intake-writer")
        assert self._queue is not None
        pending = _Pending(service.Submission(events, source))
        await self._queue.put(pending)
        await pending.done
        if pending.submission.error is not None:
            raise pending.submission.error
        assert pending.submission.receipts is not None
        return pending.submission.receipts

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            group = [await self._queue.get()]
            size = len(group[0].submission.events)
            while not self._queue.empty() and size < self.max_events:
                item = self._queue.get_nowait()
                group.append(item)
                size += len(item.submission.events)
            try:
                failures = await asyncio.to_thread(self._commit_isolated, [p.submission for p in group])
            except BaseException as exc:  # cancelled or worse: nobody's events are known stored
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for p, failure in zip(group, failures, strict=True):
                if p.done.done():
                    continue
                if failure is None:
                    p.done.set_result(None)
                else:
                    p.done.set_exception(failure)

    def _commit_isolated(self, submissions: list[service.Submission]) -> list[StoreError | None]:
        """Commit the group; if that fails, each request alone (only a bad one fails)."""
        try:
            self._commit(submissions)
            return [None] * len(submissions)
        except Exception as exc:
            if len(submissions) == 1:
                return [self._failed(submissions[0], exc)]
            log.warning("a group commit of %d requests failed (%s); committing them one by one",
                        len(submissions), type(exc).__name__)
        failures: list[StoreError | None] = []
        for sub in submissions:
            sub.receipts, sub.error = None, None  # the failed attempt's answers were never stored
            try:
                self._commit([sub])
                failures.append(None)
            except Exception as exc:
                failures.append(self._failed(sub, exc))
        return failures

    @staticmethod
    def _failed(sub: service.Submission, exc: Exception) -> StoreError:
        error = _store_error(exc)
        sub.receipts, sub.error = None, None
        log.error("HR events not stored: %s", error.reason,
                  extra={"source": sub.source, "events": len(sub.events),
                         "event_ids": [e.event_id for e in sub.events[:5]], "alert": "hr_intake_store_failed"})
        return error

    def _commit(self, submissions: list[service.Submission]) -> None:
        with self.db.transaction() as session:
            service.accept_many(session, submissions)

    async def aclose(self) -> None:
        """Stop the writer task (between groups: a group being committed finishes first)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
