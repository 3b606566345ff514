"""Readiness: is the flow moving? Liveness (``/healthz``) only says the process answers.

Not ready (503) when a target is halted, or when a threshold (settings ``readiness_*``) is
exceeded: the oldest open operation, the oldest due HR event and the oldest unverified leaver
waiting too long, too many dead letters. Every figure is in the answer either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.clock import utcnow
from provisioner.health import repository
from provisioner.settings import Settings

# target -> halted until (None: not halted); given by the process that runs the workers.
HaltsProvider = Callable[[], Mapping[str, datetime | None]]


def _age(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round(max((now - since).total_seconds(), 0.0), 3)


@dataclass
class Snapshot:
    """Every figure readiness and the gauges report, read in one transaction."""

    now: datetime
    halts: dict[str, datetime | None]
    open_operations: repository.Backlog
    dead_letters: int
    unverified_leavers: repository.Backlog
    due_events: repository.Backlog
    operations_by_status: dict[str, int] = field(default_factory=dict)
    failed_readbacks: dict[str, int] = field(default_factory=dict)  # per target (dead read-backs)

    @property
    def halted(self) -> dict[str, datetime]:
        return {t: until for t, until in self.halts.items() if until is not None and until > self.now}

    def age(self, backlog: repository.Backlog) -> float | None:
        return _age(backlog.oldest, self.now)


def snapshot(session: Session, halts: HaltsProvider | None, *, by_status: bool = False) -> Snapshot:
    now = utcnow()
    return Snapshot(now=now, halts=dict(halts() if halts else {}),
                    open_operations=repository.open_operations(session, now),
                    dead_letters=repository.dead_letters(session),
                    unverified_leavers=repository.unverified_leavers(session, now),
                    due_events=repository.due_hr_events(session, now),
                    operations_by_status=repository.operation_counts(session) if by_status else {},
                    failed_readbacks=repository.failed_readbacks(session) if by_status else {})


def readiness(snap: Snapshot, settings: Settings) -> tuple[bool, dict[str, Any]]:
    problems = [f"target {t} halted until {until.isoformat()} (credentials or permissions refused)"
                for t, until in sorted(snap.halted.items())]
    checks = [
        ("the oldest open operation", snap.age(snap.open_operations), settings.readiness_max_queue_age_seconds),
        ("the oldest due HR event", snap.age(snap.due_events), settings.readiness_max_event_age_seconds),
        ("the oldest unverified leaver", snap.age(snap.unverified_leavers),
         settings.readiness_max_unverified_leaver_seconds),
    ]
    for what, age, limit in checks:
        if limit is not None and age is not None and age > limit:
            problems.append(f"{what} has waited {age:.0f} s (limit {limit:.0f} s)")
    if settings.readiness_max_dead_letters is not None and snap.dead_letters > settings.readiness_max_dead_letters:
        problems.append(f"{snap.dead_letters} dead letter(s) (limit {settings.readiness_max_dead_letters}): "
                        "'provisioner ops list --dead'")
    body = {
        "status": "not_ready" if problems else "ready",
        "problems": problems,
        "halted_targets": [{"target": t, "until": u.isoformat()} for t, u in sorted(snap.halted.items())],
        "queue": {"open": snap.open_operations.count, "oldest_age_seconds": snap.age(snap.open_operations)},
        "dead_letters": snap.dead_letters,
        "unverified_leavers": {"count": snap.unverified_leavers.count,
                               "oldest_age_seconds": snap.age(snap.unverified_leavers)},
        "hr_events": {"due": snap.due_events.count, "oldest_due_age_seconds": snap.age(snap.due_events)},
        "thresholds": {"queue_age_seconds": settings.readiness_max_queue_age_seconds,
                       "event_age_seconds": settings.readiness_max_event_age_seconds,
                       "unverified_leaver_seconds": settings.readiness_max_unverified_leaver_seconds,
                       "dead_letters": settings.readiness_max_dead_letters},
    }
    return not problems, body
