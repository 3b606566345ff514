"""Group commit for HR intake: concurrent requests share one transaction.

Each request still gets its 202 only after the transaction holding its events has committed
(durable before the answer), but twenty requests arriving together cost one commit and one
lock of the audit chain's head instead of twenty. Requests stay all-or-nothing one by one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from provisioner.db import Database
from provisioner.intake import service
from provisioner.intake.schemas import HREventIn, Receipt


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
        """Store the events durably; raises ConflictError for this request only."""
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
                await asyncio.to_thread(self._commit, [p.submission for p in group])
            except BaseException as exc:  # the transaction failed as a whole: tell everyone
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for p in group:
                if not p.done.done():
                    p.done.set_result(None)

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
