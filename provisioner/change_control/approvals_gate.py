"""The planning rule of change control (pure: no database): of the groups the policies grant a
person, which go to the target now and which wait for a person's decision.

- A grant of a sensitive group (``approval: required`` on the managed group in its target file)
  or from a policy grant marked ``approval: required`` waits until an approver approves it. A
  rejection holds while the HR attributes the granting policies read stay the same (the
  *fingerprint*); when they change, the grant is asked for again.
- A grant that would make the person hold two groups of a separation-of-duties rule
  (``conflicts`` in a policy file) is not applied and is flagged, until an approver grants an
  exception or the policies change.
- An approval or exception with an expiry ends then: the group leaves the person's desired state,
  so the planner removes it the usual way (and the grant is asked for again).

Only grants are held back; removals are never gated (the planner computes them from what the
person holds minus what is allowed here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from provisioner.change_control.models import RequestKind, RequestStatus
from provisioner.jsonutil import canonical
from provisioner.policies.schemas import AllOf, AnyOf, Condition, Match, Not, Policy, attribute_value

Key = tuple[str, str]  # (target, group)


class Decision(Protocol):
    """What the gate reads of a stored request (``models.AccessRequest`` or a row of it)."""

    id: int
    kind: str
    target: str
    group_key: str
    status: str
    fingerprint: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ConflictRule:
    name: str
    groups: frozenset[Key]
    policy: str


@dataclass(frozen=True)
class Rules:
    """What change control needs of the policies and targets, derived once per policy set."""

    sensitive: frozenset[Key] = frozenset()
    policy_approval: frozenset[tuple[str, str, str]] = frozenset()  # (policy, target, group)
    conflicts: tuple[ConflictRule, ...] = ()
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # policy -> attributes its `when` reads

    @property
    def active(self) -> bool:
        return bool(self.sensitive or self.policy_approval or self.conflicts)

    def needs_approval(self, target: str, group: str, policies: Iterable[str]) -> bool:
        return (target, group) in self.sensitive or any(
            (p, target, group) in self.policy_approval for p in policies)

    def fingerprint(self, attrs: Mapping[str, Any], policies: Sequence[str]) -> str:
        """The HR attributes that made these policies grant the group: a rejection holds while
        they stay the same."""
        basis = {p: {a: attribute_value(dict(attrs), a) for a in self.reads.get(p, ())} for p in sorted(policies)}
        return hashlib.sha256(canonical(basis)).hexdigest()


def _reads(condition: Condition | None) -> set[str]:
    if condition is None:
        return set()
    if isinstance(condition, AllOf):
        return set().union(*(_reads(c) for c in condition.all))
    if isinstance(condition, AnyOf):
        return set().union(*(_reads(c) for c in condition.any))
    if isinstance(condition, Not):
        return _reads(condition.not_)
    assert isinstance(condition, Match)
    return {condition.attribute}


def build_rules(policies: Sequence[Policy], targets: Mapping[str, Any]) -> Rules:
    sensitive = frozenset((name, g.name) for name, t in targets.items() for g in t.managed_groups
                          if getattr(g, "approval", None) == "required")
    policy_approval = frozenset((p.name, target, group) for p in policies for target, grant in p.grants.items()
                                if grant.approval == "required" for group in grant.groups)
    conflicts = tuple(ConflictRule(c.name, frozenset((r.target, r.group) for r in c.groups), p.name)
                      for p in policies for c in p.conflicts)
    reads = {p.name: tuple(sorted(_reads(p.when))) for p in policies}
    return Rules(sensitive, policy_approval, conflicts, reads)


_CACHE: list[tuple[Any, Any, Rules]] = []


def rules_for(ctx: Any) -> Rules:
    """The rules of a planning context, rebuilt when its policies or targets are replaced."""
    if _CACHE and _CACHE[0][0] is ctx.policies and _CACHE[0][1] is ctx.targets:
        return _CACHE[0][2]
    rules = build_rules(ctx.policies, ctx.targets)
    _CACHE[:] = [(ctx.policies, ctx.targets, rules)]
    return rules


@dataclass
class Wait:
    """A grant not applied now: a request to record (``request_id`` None) or one already waiting,
    or a rejected one (shown, not asked again)."""

    kind: str
    target: str
    group: str
    policies: list[str]
    fingerprint: str
    status: str  # "pending" (waits for a decision) or "rejected"
    rule: str | None = None
    conflicts_with: list[Key] = field(default_factory=list)
    request_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "target": self.target, "group": self.group, "policies": self.policies,
               "status": self.status, "request_id": self.request_id}
        if self.rule:
            out["rule"] = self.rule
            out["conflicts_with"] = [list(k) for k in self.conflicts_with]
        return out


@dataclass
class Gate:
    allowed: dict[str, dict[str, list[str]]]  # desired groups that go ahead (the planner's input)
    waits: list[Wait]
    desired: set[Key]  # every granted group, gated or not
    decisions: list[Decision]  # the person's live decisions, as read

    def as_diff(self) -> list[dict[str, Any]]:
        return [w.as_json() for w in self.waits]


def _latest(decisions: Iterable[Decision]) -> dict[tuple[str, Key], Decision]:
    out: dict[tuple[str, Key], Decision] = {}
    for d in sorted(decisions, key=lambda d: d.id):
        out[(d.kind, (d.target, d.group_key))] = d
    return out


def standing(decision: Decision | None, fingerprint: str, now: datetime) -> str | None:
    """approved, rejected, pending, ended (expired or revoked) or None (nothing decided)."""
    if decision is None:
        return None
    if decision.status == RequestStatus.APPROVED:
        return "ended" if decision.expires_at is not None and decision.expires_at <= now else "approved"
    if decision.status == RequestStatus.REJECTED:
        return "rejected" if decision.fingerprint == fingerprint else None
    if decision.status in (RequestStatus.EXPIRED, RequestStatus.REVOKED):
        return "ended"
    return "pending" if decision.status == RequestStatus.PENDING else None


def gate(rules: Rules, attrs: Mapping[str, Any], desired: Mapping[str, Mapping[str, list[str]]],
         have: Mapping[str, set[str]], decisions: Sequence[Decision], now: datetime) -> Gate:
    latest = _latest(decisions)
    held = {(t, g) for t, groups in have.items() for g in groups}
    allowed = {t: dict(groups) for t, groups in desired.items()}
    waits: list[Wait] = []
    fps: dict[Key, str] = {}

    def drop(key: Key) -> None:
        allowed.get(key[0], {}).pop(key[1], None)

    for target, groups in desired.items():
        for group, policies in groups.items():
            key = (target, group)
            if not rules.needs_approval(target, group, policies):
                continue
            fps[key] = fp = rules.fingerprint(attrs, policies)
            row = latest.get((RequestKind.APPROVAL, key))
            st = standing(row, fp, now)
            if st == "approved" or (key in held and row is None):
                continue  # approved, or held from before it was sensitive (not taken away)
            drop(key)
            waits.append(Wait(RequestKind.APPROVAL, target, group, list(policies), fp,
                              "rejected" if st == "rejected" else "pending",
                              request_id=row.id if st in ("pending", "rejected") else None))
    future = {(t, g) for t, groups in allowed.items() for g in groups}
    for rule in rules.conflicts:
        members = sorted(rule.groups & future)
        if len(members) < 2:
            continue
        keep, blocked = [], []
        for key in members:
            fp = fps.get(key) or rules.fingerprint(attrs, desired[key[0]][key[1]])
            row = latest.get((RequestKind.SOD, key))
            st = standing(row, fp, now)
            if st == "approved" or (key in held and row is None):
                keep.append(key)  # excepted, or held before the rule (reported, not taken away)
            else:
                blocked.append((key, fp, row, st))
        if not keep and blocked and blocked[0][0] not in held:
            keep.append(blocked.pop(0)[0])  # nothing held yet: the first grant goes ahead, the others wait
        for key, fp, row, st in blocked:
            drop(key)
            future.discard(key)
            waits.append(Wait(RequestKind.SOD, key[0], key[1], list(desired[key[0]][key[1]]), fp, "pending",
                              rule=rule.name, conflicts_with=[k for k in members if k != key],
                              request_id=row.id if st == "pending" else None))
    return Gate(allowed=allowed, waits=waits,
                desired={(t, g) for t, groups in desired.items() for g in groups}, decisions=list(decisions))
