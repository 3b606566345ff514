"""Stored runs: every reconciliation (scheduled, ``provisioner reconcile``, the console) kept
with its drift items, so the console can list them, group them by kind and fix a selection
later (:mod:`.on_demand`). Stored in the transaction that records the run in the audit trail
(:func:`provisioner.reconcile.fix.record`); only the last ``reconcile_runs_kept`` runs stay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from provisioner import limits
from provisioner.db import insert_rows
from provisioner.reconcile import repository
from provisioner.reconcile.models import ReconcileDrift, ReconcileRun
from provisioner.reconcile.report import ReconcileReport
from provisioner.settings import Settings

_DEFAULTS = Settings.model_fields


@dataclass(frozen=True)
class Keep:
    """How much history is stored: runs kept, drift items stored per run."""

    runs: int = _DEFAULTS["reconcile_runs_kept"].default
    items: int = _DEFAULTS["reconcile_run_items_max"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> Keep:
        return cls(settings.reconcile_runs_kept, settings.reconcile_run_items_max)


@dataclass(frozen=True)
class RunInfo:
    """What started a run, and when: recorded with its report."""

    trigger: str  # "schedule", "cli", "console:<name>", "manual" (a library call)
    started_at: datetime
    targets: Sequence[str]
    keep: Keep = Keep()
    selected: bool = False  # "fix selected": only some lines fixed, only their targets read


def _cut(value: str | None, length: int) -> str | None:
    """A target's value (a login, a display name) longer than the column keeps its start:
    the page names the account, the remote id identifies it."""
    return value[:length] if value is not None and len(value) > length else value


def store(session: Session, report: ReconcileReport, info: RunInfo, *, fix: bool, now: datetime) -> int:
    """Store the run and (up to ``keep.items``) its drift items; prune older runs. Items the
    run fixed are marked fixed by its trigger. Returns the run's id."""
    kept = report.drift[:info.keep.items]
    row = ReconcileRun(started_at=info.started_at, finished_at=now, trigger=_cut(info.trigger, limits.RUN_TRIGGER),
                       fix=fix, selected=info.selected, targets=list(info.targets), drift=len(report.drift), stored=len(kept),
                       replanned=report.replanned, removed=report.removed, incidents=report.incidents,
                       read_retries=report.read_retries, errors=list(report.errors))
    session.add(row)
    session.flush()
    by = _cut(info.trigger, limits.RUN_TRIGGER)
    insert_rows(session, ReconcileDrift, [{
        "run_id": row.id, "target": d.target, "group_key": _cut(d.group, 200), "kind": d.kind,
        "employee_id": _cut(d.employee_id, limits.EMPLOYEE_ID), "identity_id": d.identity_id,
        "remote_id": _cut(d.remote_id, 200), "login": _cut(d.login, 320),
        "display_name": _cut(d.display_name, limits.DISPLAY_NAME), "change": d.change, "terminated": d.terminated,
        "held": d.held, "action": d.action or None, "fixed_at": now if d.fixed else None,
        "fixed_by": by if d.fixed else None, "outcome": None} for d in kept])
    repository.prune_runs(session, info.keep.runs)
    report.run_id = row.id
    return row.id
