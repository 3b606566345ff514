"""``--wait``: follow one piece of work to the end with progress bars, then one summary line.

The work is an import's events (``provisioner import FILE --wait``) and the operations of the
plans they trigger (``event:<event_id>``), or the operations of a policy rollout's plans
(``provisioner policy reload --wait``, ``policy:<fingerprint>``). The bars show the events
applied, and per target the operations done and the read-backs done, until nothing of it is
left in the queue. Whatever runs the processor and the worker does the work (a running
``provisioner serve``), or ``apply`` (``--apply``: the same Runtime in this process).

The exit code says how it ended: 0, or 1 when an event failed or an operation went dead, with
the command that lists them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provisioner.cli.common import console, err_console

if TYPE_CHECKING:
    from provisioner.db import Database

OPEN = ("waiting", "pending", "running")
READ_BACK = "verify_revoked"
QUIET_SECONDS = 20.0  # no change for this long: say what should be running


@dataclass
class Work:
    """What to follow: an import's events (``sources`` received since ``since``) and their
    plans' operations, or the operations of plans with ``triggers``."""

    sources: Sequence[str] = ()
    since: datetime | None = None
    triggers: Sequence[str] = ()


@dataclass
class State:
    events: dict[str, int] = field(default_factory=dict)  # status (and "not_due") -> count
    ops: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> status -> count
    reads: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> status -> count (read-backs)

    @property
    def due_pending(self) -> int:
        return self.events.get("pending", 0)

    @property
    def open_ops(self) -> int:
        return sum(n for by in (*self.ops.values(), *self.reads.values()) for s, n in by.items() if s in OPEN)

    @property
    def finished(self) -> bool:
        return self.due_pending == 0 and self.open_ops == 0

    @property
    def failed_events(self) -> int:
        return self.events.get("failed", 0)

    @property
    def dead_ops(self) -> int:
        return sum(by.get("dead", 0) for by in (*self.ops.values(), *self.reads.values()))


def read_state(db: Database, work: Work) -> State:
    from provisioner.clock import utcnow
    from provisioner.intake import repository as events
    from provisioner.queue import repository as queue

    state = State()
    with db.read() as session:
        if work.sources and work.since is not None:
            state.events = events.import_counts(session, work.sources, work.since, utcnow())
            triggers = events.import_triggers(work.sources, work.since)
        else:
            triggers = list(work.triggers)
        for target, kind, status, n in queue.progress_of(session, triggers):
            by = (state.reads if kind == READ_BACK else state.ops).setdefault(target, {})
            by[status] = by.get(status, 0) + n
    return state


class _Bars:
    def __init__(self, progress: Progress, work: Work) -> None:
        self.progress, self.work = progress, work
        self.tasks: dict[str, int] = {}

    def _set(self, key: str, label: str, done: int, total: int) -> None:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=max(total, 1))
        self.progress.update(self.tasks[key], completed=done, total=max(total, 1))

    def show(self, state: State) -> None:
        if self.work.sources:
            stored = sum(state.events.values())
            due = stored - state.events.get("not_due", 0)
            self._set("stored", "events stored", stored, stored)
            self._set("applied", "events applied", due - state.due_pending, due)
        for label, table in (("operations", state.ops), ("read back", state.reads)):
            for target, by in sorted(table.items()):
                total = sum(by.values())
                self._set(f"{label}:{target}", f"{target} {label}", total - sum(by.get(s, 0) for s in OPEN), total)


def summary(state: State, work: Work) -> str:
    parts = []
    if work.sources:
        e = state.events
        settled = {k: v for k, v in sorted(e.items()) if k not in ("pending", "not_due") and v}
        parts.append(f"{sum(e.values())} event(s): " + (", ".join(f"{v} {k}" for k, v in settled.items()) or "none settled")
                     + (f", {e['not_due']} not due yet (applied on their date)" if e.get("not_due") else ""))
    for target in sorted(set(state.ops) | set(state.reads)):
        ops, reads = state.ops.get(target, {}), state.reads.get(target, {})
        text = f"{target}: {ops.get('succeeded', 0)} operation(s) done"
        if ops.get("dead"):
            text += f", {ops['dead']} dead"
        if reads:
            text += f", {reads.get('succeeded', 0)} read back"
        parts.append(text)
    return "; ".join(parts) or "nothing to do"


async def follow(db: Database, work: Work, *, poll: float = 0.5,
                 apply: Callable[[asyncio.Event], Awaitable[None]] | None = None) -> int:
    """Show progress until the work is finished; print the summary; return the exit code.
    ``apply(stop)`` runs the processor and worker here until ``stop`` is set."""
    stop = asyncio.Event()
    runner = asyncio.create_task(apply(stop)) if apply is not None else None
    last, changed = None, time.monotonic()
    hinted = False
    try:
        with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            bars = _Bars(progress, work)
            while True:
                state = await asyncio.to_thread(read_state, db, work)
                bars.show(state)
                if state.finished:
                    break
                if runner is not None and runner.done():
                    runner.result()  # it raised: say so
                    return _stopped(state, work, "the in-process processor and worker stopped")
                if (state.events, state.ops, state.reads) != last:
                    last, changed = (state.events, state.ops, state.reads), time.monotonic()
                elif not hinted and runner is None and time.monotonic() - changed > QUIET_SECONDS:
                    progress.console.print(f"no progress for {QUIET_SECONDS:.0f} s: is 'provisioner serve' "
                                           "running against this database? (or use --apply)", highlight=False)
                    hinted = True
                await asyncio.sleep(poll)
    finally:
        if runner is not None:
            stop.set()
            await asyncio.gather(runner, return_exceptions=True)
    console.print("done: " + summary(state, work), highlight=False, soft_wrap=True)
    return _verdict(state)


def _verdict(state: State) -> int:
    problems = []
    if state.failed_events:
        problems.append(f"{state.failed_events} event(s) failed: see 'provisioner events list --status failed'")
    if state.dead_ops:
        problems.append(f"{state.dead_ops} operation(s) dead: see 'provisioner ops list --status dead'")
    for line in problems:
        err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    return 1 if problems else 0


def _stopped(state: State, work: Work, why: str) -> int:
    err_console.print(f"[bold red]error:[/] {why} before the work was done: {summary(state, work)}",
                      highlight=False, soft_wrap=True)
    return 1
