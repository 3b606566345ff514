"""Revocation evidence for auditors: per leaver, per system, what was revoked and when, and a
read-back of the target proving no access remains (verified, not assumed; every group still held
is listed, unmanaged ones flagged: see ``checks``); then, as lines of their own, the incidents of
access that came back after the revocation (never merged into it). Columns and the meaning of
from/to are in the README ("Revocation evidence")."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit import service as audit
from provisioner.clock import utcnow
from provisioner.evidence import repository
from provisioner.evidence.models import RevocationCheck, RevocationIncident
from provisioner.identities import repository as identities
from provisioner.intake import repository as events
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation

REVOKING = {"disable_account", "revoke_sessions", "remove_member", "delete_account"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _operations(ops: Sequence[Operation], target: str) -> list[dict[str, Any]]:
    return [{"op_id": op.id, "kind": op.kind, "group": op.group_key, "status": op.status,
             "attempts": op.attempts, "completed_at": _iso(op.completed_at)}
            for op in ops if op.target == target and op.kind in REVOKING]


def _incidents(session: Session, incidents: Sequence[RevocationIncident]) -> list[dict[str, Any]]:
    """Each incident with what its plan did in its target and that plan's latest read-back."""
    plan_ids = sorted({i.plan_id for i in incidents if i.plan_id is not None})
    ops = queue.for_plans(session, plan_ids) if plan_ids else []
    latest: dict[tuple[int | None, str], RevocationCheck] = {}
    for check in repository.checks_for_plans(session, plan_ids) if plan_ids else []:
        latest[(check.plan_id, check.target)] = check
    out = []
    for incident in incidents:
        check = latest.get((incident.plan_id, incident.target))
        out.append({
            "incident_id": incident.id, "target": incident.target, "kind": incident.kind,
            "detail": incident.detail or {}, "detected_at": _iso(incident.detected_at),
            "detected_by": incident.detected_by, "plan_id": incident.plan_id,
            "operations": _operations([o for o in ops if o.plan_id == incident.plan_id], incident.target),
            "readback": check.readback if check else None,
            "verified": check.verified if check else False,
            "checked_at": _iso(check.checked_at) if check else None,
            "fixed_at": _iso(incident.fixed_at), "fixed_by": incident.fixed_by,
            "time_to_fix_seconds": (round((incident.fixed_at - incident.detected_at).total_seconds(), 3)
                                    if incident.fixed_at else None),
        })
    return out


def revocations(session: Session, start: datetime, end: datetime, *, employee_id: str | None = None,
                target: str | None = None) -> list[dict[str, Any]]:
    """One record per leaver whose termination took effect in [start, end): the revocation
    (from the termination's own plans only) and, separately, every incident after it.
    ``employee_id`` keeps that leaver only; ``target`` keeps the leavers with a revocation in that
    system, each with that system only (and its incidents): ``all_verified`` and time-to-revoke
    are then that system's."""
    records, only = [], target
    for event in events.terminations_between(session, start, end, employee_id):
        identity = identities.by_employee_id(session, event.employee_id)
        plan = repository.plan_for_trigger(session, f"event:{event.event_id}")
        story = repository.revocation_plans(session, plan) if plan else repository.RevocationPlans([], None)
        ops = [op for op in (queue.for_plans(session, story.plan_ids) if story.plan_ids else [])
               if story.covers(op.plan_id, op.target)]
        checks = [check for check in (repository.checks_for_plans(session, story.plan_ids) if story.plan_ids else [])
                  if story.covers(check.plan_id, check.target)]
        incidents = (_incidents(session, repository.incidents_between(session, plan.identity_id, plan.created_at,
                                                                      story.until)) if plan else [])
        if only is not None:
            incidents = [i for i in incidents if i["target"] == only]
        due = max(event.effective_at, event.received_at) if not event.immediate else event.received_at
        targets: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(op.target for op in ops if op.kind in REVOKING):
            targets[name] = {"target": name, "operations": _operations(ops, name)}
        for check in checks:
            entry = targets.setdefault(check.target, {"target": check.target, "operations": []})
            entry["verified"] = check.verified  # the latest read-back of the revocation wins
            entry["verified_at"] = _iso(check.checked_at) if check.verified else None
            entry["readback"] = check.readback
            entry["checked_at"] = _iso(check.checked_at)
        if only is not None:
            targets = {name: entry for name, entry in targets.items() if name == only}
            if not targets:
                continue
        for entry in targets.values():
            done = [o["completed_at"] for o in entry["operations"] if o["status"] == "succeeded"]
            entry["revoked_at"] = max(done) if done else None
            entry.setdefault("verified", False)
            entry.setdefault("verified_at", None)
            entry.setdefault("readback", None)
            entry["unmanaged_access"] = bool((entry["readback"] or {}).get("unmanaged_access"))
            entry["all_operations_succeeded"] = all(o["status"] == "succeeded" for o in entry["operations"])
            entry["incidents"] = [i for i in incidents if i["target"] == entry["target"]]
        verified_times = [datetime.fromisoformat(t["verified_at"]) for t in targets.values() if t["verified_at"]]
        all_verified = bool(targets) and all(t["verified"] for t in targets.values())
        records.append({
            "employee_id": event.employee_id,
            "identity_id": identity.id if identity else None,
            "display_name": identity.display_name if identity else None,
            "user_name": identity.user_name if identity else None,
            "event_id": event.event_id,
            "hr_termination_time": _iso(event.effective_at),
            "received_at": _iso(event.received_at),
            "effective_time": _iso(event.processed_at),
            "immediate": event.immediate,
            "plan_id": plan.id if plan else None,
            "plan_ids": story.plan_ids,
            "systems": sorted(targets.values(), key=lambda t: t["target"]),
            "all_verified": all_verified,
            "unmanaged_access": any(t["unmanaged_access"] for t in targets.values()),
            "time_to_revoke_seconds": (round((max(verified_times) - due).total_seconds(), 3)
                                       if all_verified and verified_times else None),
            "incidents": incidents,
            "incidents_open": sum(1 for i in incidents if i["fixed_at"] is None),
        })
    return records


# One row per leaver and system (record=revocation), then one per incident (record=incident).
CSV_COLUMNS = ["employee_id", "display_name", "user_name", "record", "event_id", "hr_termination_time",
               "received_at", "effective_time", "immediate", "system", "operations",
               "operations_succeeded", "revoked_at", "verified", "verified_at", "account_enabled",
               "groups_remaining", "other_groups", "unmanaged_access", "groups_read",
               "time_to_revoke_seconds", "incident_id", "incident_kind", "detected_at", "detected_by",
               "fixed_at", "fixed_by", "time_to_fix_seconds"]


def _ops_cell(operations: list[dict[str, Any]]) -> str:
    return ";".join(f"{o['kind']}{':' + o['group'] if o['group'] else ''}={o['status']}@{o['completed_at']}"
                    for o in operations)


def _readback_cells(readback: dict[str, Any] | None) -> dict[str, Any]:
    readback = readback or {}
    return {"account_enabled": readback.get("enabled"),
            "groups_remaining": ";".join(readback.get("groups_remaining") or []),
            "other_groups": ";".join(f"{g['name']} ({g['id']})" for g in readback.get("other_groups") or []),
            "unmanaged_access": readback.get("unmanaged_access"),
            "groups_read": readback.get("groups_read")}


def to_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        person = {key: rec[key] for key in ("employee_id", "display_name", "user_name", "event_id",
                                            "hr_termination_time", "received_at", "effective_time", "immediate")}
        for system in rec["systems"] or [{"target": "", "operations": []}]:
            writer.writerow({
                **person, "record": "revocation", "system": system["target"],
                "operations": _ops_cell(system["operations"]),
                "operations_succeeded": system.get("all_operations_succeeded"),
                "revoked_at": system.get("revoked_at"), "verified": system.get("verified"),
                "verified_at": system.get("verified_at"), **_readback_cells(system.get("readback")),
                "time_to_revoke_seconds": rec["time_to_revoke_seconds"],
            })
        for incident in rec.get("incidents") or []:
            writer.writerow({
                **person, "record": "incident", "system": incident["target"],
                "operations": _ops_cell(incident["operations"]),
                "operations_succeeded": all(o["status"] == "succeeded" for o in incident["operations"]),
                "verified": incident["verified"],
                "verified_at": incident["checked_at"] if incident["verified"] else None,
                **_readback_cells(incident["readback"]),
                "incident_id": incident["incident_id"], "incident_kind": incident["kind"],
                "detected_at": incident["detected_at"], "detected_by": incident["detected_by"],
                "fixed_at": incident["fixed_at"], "fixed_by": incident["fixed_by"],
                "time_to_fix_seconds": incident["time_to_fix_seconds"],
            })
    return out.getvalue()


def to_json(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=2, sort_keys=True)


def audit_anchor(session: Session) -> dict[str, Any]:
    """The audit chain's head as this export's transaction saw it: an anchor kept outside the
    database (``provisioner audit verify --anchor <manifest>``)."""
    head = audit.read_head(session)
    return {"seq": head.seq, "hash": head.hash, "key_id": head.key_id}


def manifest(content: bytes, *, filename: str, start: datetime, end: datetime, count: int,
             fmt: str, audit_head: dict[str, Any] | None = None, employee_id: str | None = None,
             target: str | None = None) -> dict[str, Any]:
    """The export's manifest; an export narrowed to a leaver or a system says so (``filters``)."""
    meta = {"file": filename, "format": fmt, "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content), "leavers": count, "from": start.isoformat(), "to": end.isoformat(),
            "generated_at": utcnow().isoformat(), "generator": "provisioner evidence export",
            "audit_head": audit_head}
    filters = {key: value for key, value in (("employee_id", employee_id), ("target", target)) if value is not None}
    if filters:
        meta["filters"] = filters
    return meta
