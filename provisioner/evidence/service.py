"""Revocation evidence for auditors: per leaver, per system, what was revoked and when, and a
read-back of the target proving no access remains (verified, not assumed)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.clock import utcnow
from provisioner.evidence import repository
from provisioner.identities import repository as identities
from provisioner.intake import repository as events
from provisioner.queue import repository as queue

REVOKING = {"disable_account", "revoke_sessions", "remove_member", "delete_account"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def revocations(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One record per leaver whose termination took effect in [start, end)."""
    records = []
    for event in events.terminations_between(session, start, end):
        identity = identities.by_employee_id(session, event.employee_id)
        plan = repository.plan_for_trigger(session, f"event:{event.event_id}")
        plan_ids = repository.leaver_plan_ids(session, plan) if plan else []
        ops = queue.for_plans(session, plan_ids) if plan_ids else []
        checks = repository.checks_for_plans(session, plan_ids)
        due = max(event.effective_at, event.received_at) if not event.immediate else event.received_at
        targets: dict[str, dict[str, Any]] = {}
        for op in ops:
            if op.kind not in REVOKING:
                continue
            entry = targets.setdefault(op.target, {"target": op.target, "operations": []})
            entry["operations"].append({"op_id": op.id, "kind": op.kind, "group": op.group_key,
                                        "status": op.status, "attempts": op.attempts,
                                        "completed_at": _iso(op.completed_at)})
        for check in checks:
            entry = targets.setdefault(check.target, {"target": check.target, "operations": []})
            entry["verified"] = check.verified  # the latest read-back wins
            entry["verified_at"] = _iso(check.checked_at) if check.verified else None
            entry["readback"] = check.readback
            entry["checked_at"] = _iso(check.checked_at)
        for entry in targets.values():
            done = [o["completed_at"] for o in entry["operations"] if o["status"] == "succeeded"]
            entry["revoked_at"] = max(done) if done else None
            entry.setdefault("verified", False)
            entry.setdefault("verified_at", None)
            entry.setdefault("readback", None)
            entry["all_operations_succeeded"] = all(o["status"] == "succeeded" for o in entry["operations"])
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
            "systems": sorted(targets.values(), key=lambda t: t["target"]),
            "all_verified": all_verified,
            "time_to_revoke_seconds": (round((max(verified_times) - due).total_seconds(), 3)
                                       if all_verified and verified_times else None),
        })
    return records


CSV_COLUMNS = ["employee_id", "display_name", "user_name", "event_id", "hr_termination_time",
               "received_at", "effective_time", "immediate", "system", "operations",
               "operations_succeeded", "revoked_at", "verified", "verified_at", "account_enabled",
               "groups_remaining", "time_to_revoke_seconds"]


def to_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        for system in rec["systems"] or [{"target": "", "operations": []}]:
            readback = system.get("readback") or {}
            writer.writerow({
                "employee_id": rec["employee_id"], "display_name": rec["display_name"],
                "user_name": rec["user_name"], "event_id": rec["event_id"],
                "hr_termination_time": rec["hr_termination_time"], "received_at": rec["received_at"],
                "effective_time": rec["effective_time"], "immediate": rec["immediate"],
                "system": system["target"],
                "operations": ";".join(f"{o['kind']}{':' + o['group'] if o['group'] else ''}={o['status']}@{o['completed_at']}"
                                       for o in system["operations"]),
                "operations_succeeded": system.get("all_operations_succeeded"),
                "revoked_at": system.get("revoked_at"), "verified": system.get("verified"),
                "verified_at": system.get("verified_at"),
                "account_enabled": readback.get("enabled"),
                "groups_remaining": ";".join(readback.get("groups_remaining") or []),
                "time_to_revoke_seconds": rec["time_to_revoke_seconds"],
            })
    return out.getvalue()


def to_json(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=2, sort_keys=True)


def manifest(content: bytes, *, filename: str, start: datetime, end: datetime, count: int,
             fmt: str) -> dict[str, Any]:
    return {"file": filename, "format": fmt, "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content), "leavers": count, "from": start.isoformat(), "to": end.isoformat(),
            "generated_at": utcnow().isoformat(), "generator": "provisioner evidence export"}
