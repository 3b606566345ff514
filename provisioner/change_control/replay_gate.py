"""Dead-letter replays through change control (``queue.service.replay``): an operation sent back
to the queue passes the gates a planned one does, whoever replays it (the CLI, the console).

- A group addition whose grant needs an approver's decision it does not have now (pending,
  rejected, ended, never asked, or blocked by a separation-of-duties rule) is not replayed; the
  refusal names the request to decide (``approvals_gate``, as the planner reads it).
- Destructive work (a disable, a deletion, a membership removal) and its companions are screened
  for mass-change holds as at planning (``HoldPolicy.screen``): a person whose work waits in an
  open set joins it, and a replay that crosses its cause's thresholds opens one. A leaver's work
  goes past other open sets as a termination does (``holds.service.passes_hold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.change_control.approvals_gate import Wait, gate, rules_for
from provisioner.change_control.holds import repository as holds
from provisioner.change_control.models import RequestKind
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity
from provisioner.identities.service import attributes_of
from provisioner.planner.service import PlanningContext, load_known
from provisioner.policies.evaluate import desired_groups
from provisioner.queue.models import Operation, OpStatus
from provisioner.targets.contract import OpKind

REPLAY = "replay"  # the trigger of a replayed operation with no cause of its own: screened, never counted


@dataclass
class Screened:
    refused: dict[int, str] = field(default_factory=dict)  # op id -> why it is not replayed
    held: dict[int, int] = field(default_factory=dict)  # op id -> the hold set it waits in


def screen(session: Session, ctx: PlanningContext, ops: Sequence[Operation], now: datetime) -> Screened:
    """What of ``ops`` (dead operations about to be replayed) may not go back to the queue, and
    what goes back held. Held ones are tagged here (``cause``); the caller sets their status."""
    out = Screened()
    people = identities.identities_by_id(session, sorted({op.identity_id for op in ops}))
    out.refused = _ungranted(session, ctx, [op for op in ops if op.kind == OpKind.ADD_MEMBER.value and op.group_key],
                             people, now)
    holdable = [op for op in ops if op.id not in out.refused
                and (op.kind in holds.DESTRUCTIVE or op.kind in holds.COMPANIONS)]
    if ctx.holds is None or not holdable:
        return out
    kinds = {i: "leaver" for i, p in people.items() if p.state == State.TERMINATED}
    by_cause: dict[str | None, list[Operation]] = {}
    for op in holdable:
        by_cause.setdefault(op.cause, []).append(op)
    for cause, group in sorted(by_cause.items(), key=lambda item: item[0] or ""):
        rows: list[dict[str, Any]] = [{"identity_id": op.identity_id, "target": op.target, "kind": op.kind,
                                       "status": OpStatus.PENDING} for op in group]
        ctx.holds.screen(session, rows, {op.identity_id: cause or REPLAY for op in group}, now, kinds)
        for op, row in zip(group, rows, strict=True):
            if row["status"] == OpStatus.HELD:
                out.held[op.id] = row["hold_id"]
                op.cause = row["cause"]
    return out


def _ungranted(session: Session, ctx: PlanningContext, grants: Sequence[Operation], people: dict[str, Identity],
               now: datetime) -> dict[int, str]:
    rules = rules_for(ctx)
    if not rules.active or not grants:
        return {}
    who = [people[i] for i in sorted({op.identity_id for op in grants}) if i in people]
    known = load_known(session, ctx, who)
    refused: dict[int, str] = {}
    for person in who:
        attrs, k = attributes_of(person), known[person.id]
        holding = {t: set(k.groups.get(t, ())) | set(k.adding.get(t, ())) for t in {*k.groups, *k.adding}}
        gated = gate(rules, attrs, desired_groups(ctx.policies, attrs, person.state), holding, k.decisions, now)
        waits = {(w.target, w.group): w for w in gated.waits}
        for op in (op for op in grants if op.identity_id == person.id):
            key = (op.target, op.group_key or "")
            what = f"operation {op.id} adds {person.employee_id or person.id} to {key[1]} in {key[0]}"
            if key in waits:
                refused[op.id] = f"{what}, which {_waiting(waits[key], person)}: not replayed"
            elif key not in gated.desired and rules.needs_approval(*key, ()):
                refused[op.id] = (f"{what}, which needs an approver and no policy grants it now: not replayed "
                                  "(re-plan the person if the policies should)")
    return refused


def _waiting(wait: Wait, person: Identity) -> str:
    emp = person.employee_id or person.id
    if wait.kind == RequestKind.SOD:
        return (f"separation-of-duties rule {wait.rule} blocks (flag {wait.request_id}; grant an exception: "
                f"'provisioner sod exception grant {emp} {wait.rule}', or fix the policy)")
    if wait.status == "rejected":
        return f"an approver rejected (request {wait.request_id})"
    if wait.request_id is not None:
        return (f"waits for an approver (request {wait.request_id}: 'provisioner approvals approve "
                f"{wait.request_id}'; once approved the person is re-planned and the grant sent)")
    return (f"needs an approver's decision and has none in force (ended or never asked): ask for one with "
            f"'POST /identities/{emp}/replan'")
