"""Reads of a reconciliation run, retried with the queue's back-off.

A read (a group's members, accounts' states, the leavers' lookups, naming accounts, resolving
group names) that fails with a transient outcome (429, 5xx, a timeout, a dropped connection) is
tried again after :func:`provisioner.queue.decide.backoff_seconds` (exponential with jitter, a
``Retry-After`` honoured as a floor), up to ``PROVISIONER_RECONCILE_READ_ATTEMPTS`` attempts in
all. Other outcomes (401/403, 404, a refused request) are not retried. What still fails is
raised to the caller, which reports it and goes on with the other groups and targets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from provisioner.queue.decide import backoff_seconds
from provisioner.settings import Settings
from provisioner.targets.contract import Outcome, TargetError

log = logging.getLogger(__name__)

T = TypeVar("T")

_DEFAULTS = Settings.model_fields


@dataclass
class ReadRetry:
    """How reconciliation retries its reads; counts the retries it made."""

    attempts: int = _DEFAULTS["reconcile_read_attempts"].default
    base: float = _DEFAULTS["backoff_base_seconds"].default
    cap: float = _DEFAULTS["backoff_max_seconds"].default
    retries: int = field(default=0, init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadRetry:
        return cls(attempts=settings.reconcile_read_attempts, base=settings.backoff_base_seconds,
                   cap=settings.backoff_max_seconds)

    async def __call__(self, target: str, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, again after a transient failure while attempts remain."""
        attempt = 1
        while True:
            try:
                return await call()
            except TargetError as exc:
                if exc.outcome != Outcome.TRANSIENT or attempt >= self.attempts:
                    raise
                delay = backoff_seconds(attempt, exc.retry_after, base=self.base, cap=self.cap)
                log.warning("reconcile: reading %s of %s failed (%s), attempt %d of %d; again in %.2f s",
                            what, target, exc.detail, attempt, self.attempts, delay,
                            extra={"target": target})
                self.retries += 1
                attempt += 1
                await asyncio.sleep(delay)


def failed(target: str, what: str, exc: TargetError) -> str:
    """The report line (and an alert in the log) of a read that failed for good."""
    log.error("reconcile: cannot read %s of %s: %s", what, target, exc.detail,
              extra={"target": target, "alert": "reconcile_unreadable"})
    return f"{target}: cannot read {what}: {exc.detail}"


def unless_fatal(exc: BaseException) -> TargetError:
    """A failed read that leaves the rest of the target readable; a target that refuses the
    service as a whole (STOP: 401/403, credentials) or an unexpected error is raised again."""
    if isinstance(exc, TargetError) and exc.outcome != Outcome.STOP:
        return exc
    raise exc
