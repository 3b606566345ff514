"""What the console shows of reconciliation, from the stored runs (provisioner/reconcile/runs.py):
the Reconcile page (the last runs; a run's drift grouped by kind), the overview's last run and
a person's drift items and revocation incidents for their timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.reconcile import repository
from provisioner.reconcile.models import ReconcileDrift, ReconcileRun
from provisioner.reconcile.report import Kind

RUNS_LISTED = 20
TIMELINE_ITEMS = 100

KIND_TITLES = {
    Kind.MEMBER_ADDED: "In a group the service did not grant",
    Kind.MEMBER_REMOVED: "Removed from a group the service granted",
    Kind.UNKNOWN_MEMBER: "Accounts the service does not know, in a managed group",
    Kind.ACCOUNT_DELETED: "Accounts deleted behind the service's back",
    Kind.ACCOUNT_ENABLED: "Accounts enabled behind the service's back",
    Kind.ACCOUNT_DISABLED: "Accounts disabled behind the service's back",
    Kind.ORPHAN: "Leavers' accounts the service never linked (reported only)",
    Kind.POLICY: "Access that differs from what the policies now say",
}


def _run_row(run: ReconcileRun, open_items: int) -> dict[str, Any]:
    return {"id": run.id, "started_at": run.started_at, "finished_at": run.finished_at, "trigger": run.trigger,
            "fix": run.fix, "selected": run.selected, "targets": run.targets, "drift": run.drift, "stored": run.stored,
            "open": open_items, "errors": run.errors, "replanned": run.replanned, "removed": run.removed,
            "incidents": run.incidents}


def _item(d: ReconcileDrift) -> dict[str, Any]:
    if d.display_name and d.login:
        name = f"{d.display_name} <{d.login}>"
    else:
        name = d.display_name or d.login or d.remote_id or "(an account the target could not describe)"
    return {"id": d.id, "target": d.target, "group": d.group, "kind": d.kind, "employee_id": d.employee_id,
            "name": name, "remote_id": d.remote_id, "change": d.change, "terminated": d.terminated,
            "action": d.action, "fixed_at": d.fixed_at, "fixed_by": d.fixed_by, "outcome": d.outcome,
            # what "fix selected" may try: never an orphan (the service does not own it)
            "fixable": d.fixed_at is None and d.kind != Kind.ORPHAN}


def page(session: Session, run_id: int | None, target: str | None, kind: str | None) -> dict[str, Any]:
    """The last runs, and the chosen run (the newest by default) grouped by kind."""
    runs = repository.recent_runs(session, RUNS_LISTED)
    open_items = repository.unfixed_counts(session, [r.id for r in runs])
    chosen = repository.run(session, run_id) if run_id is not None else (runs[0] if runs else None)
    out: dict[str, Any] = {"runs": [_run_row(r, open_items.get(r.id, 0)) for r in runs], "run": None,
                           "groups": [], "targets": [], "kinds": [], "titles": KIND_TITLES}
    if chosen is None:
        return out
    facets = repository.run_facets(session, chosen.id)
    out["run"] = _run_row(chosen, repository.unfixed_counts(session, [chosen.id]).get(chosen.id, 0))
    out["targets"] = sorted({t for t, _, _ in facets})
    out["kinds"] = sorted({k for _, k, _ in facets})
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in repository.run_items(session, chosen.id, target=target, kind=kind):
        groups.setdefault(d.kind, []).append(_item(d))
    out["groups"] = [{"kind": k, "title": KIND_TITLES.get(k, k), "rows": v} for k, v in sorted(groups.items())]
    return out


def last_run(session: Session) -> dict[str, Any] | None:
    """The overview's line: when the last run finished and its drift (all, and not yet fixed)."""
    run = repository.last_run(session)
    if run is None:
        return None
    return _run_row(run, repository.unfixed_counts(session, [run.id]).get(run.id, 0))


def timeline(session: Session, identity_id: str) -> list[dict[str, Any]]:
    """A person's drift items (stored runs) and revocation incidents, as timeline rows."""
    rows: list[dict[str, Any]] = []
    for d, at in repository.drift_of_identity(session, identity_id, TIMELINE_ITEMS):
        where = d.target + (f" ({d.group})" if d.group else "")
        state = (f"fixed by {d.fixed_by}" if d.fixed_at else "not fixed") + (f": {d.outcome}" if d.outcome else "")
        what = f"{d.kind}{f' ({d.change})' if d.change else ''} in {where}, reconcile run {d.run_id}"
        rows.append({"at": at, "kind": "drift", "what": what,
                     "outcome": state + (f"; run: {d.action}" if d.action and not d.outcome else "")})
    for i in repository.incidents_of_identity(session, identity_id, TIMELINE_ITEMS):
        group = (i.detail or {}).get("group")
        rows.append({"at": i.detected_at, "kind": "revocation incident",
                     "what": f"{i.kind} in {i.target}" + (f" ({group})" if group else "") + f", by {i.detected_by}",
                     "outcome": (f"fixed {i.fixed_at:%Y-%m-%d %H:%M}" + (f" by {i.fixed_by}" if i.fixed_by else "")
                                 if i.fixed_at else "open") + (f" (plan {i.plan_id})" if i.plan_id else "")})
    return rows


def age_seconds(when: datetime | None, now: datetime) -> float | None:
    return (now - when).total_seconds() if when is not None else None
