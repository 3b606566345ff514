"""The population-wide diff: for every identity, the groups the policies grant in each target
against the memberships the service knows, in four bulk queries and Python.

"Known" includes the membership changes already queued (an add not yet made counts as had, a
removal not yet made as gone), so people whose plans already lead to the new desired state are
not re-planned, and a rollout interrupted half-way continues where it stopped.

The per-target rules are the planner's (``planner.service.compute``): only managed groups are
granted, a group is added only where the person has or should have an account, and every known
membership that is no longer granted is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from provisioner.identities.lifecycle import State
from provisioner.identities.service import attributes_of
from provisioner.jsonutil import canonical
from provisioner.planner.service import PlanningContext
from provisioner.policies.evaluate import desired_groups
from provisioner.policies.schemas import AllOf, AnyOf, Condition, Match, Not, Policy, attribute_value
from provisioner.rollouts import repository
from provisioner.rollouts.schemas import PolicyDriftItem, PopulationDiff
from provisioner.targets.contract import OpKind

_WANTS_ACCOUNT = (State.ACTIVE.value, State.ON_LEAVE.value)


def population_diff(session: Session, ctx: PlanningContext) -> PopulationDiff:
    # Queued changes first, memberships after: on PostgreSQL (READ COMMITTED) each query sees
    # its own snapshot, and a worker commits an operation's success and the membership it made
    # together, so a change is seen either as queued or as made, never as neither.
    queued = repository.open_membership_ops(session)
    accounts = repository.account_keys(session)
    have = repository.known_memberships(session)
    for identity_id, target, kind, group in queued:
        groups = have.setdefault((identity_id, target), set())
        if kind == OpKind.ADD_MEMBER.value:
            groups.add(group)
        else:
            groups.discard(group)
    managed = {name: set(t.managed_group_names()) for name, t in ctx.targets.items()}
    diff = PopulationDiff()
    read = _read_attributes(ctx.policies)
    desired_by_key: dict[tuple[Any, ...], dict[str, dict[str, list[str]]]] = {}
    for identity in repository.population(session):
        diff.population += 1
        state = identity.state
        # People alike in every attribute the policies read get the same grants: evaluate once.
        # The key holds str, not orjson's bytes: each of those keeps a 4 KB buffer, and with
        # (nearly) everyone unique a company's keys took 400 MB at 20,000 people.
        attrs = attributes_of(identity)
        key = (state, *(canonical(attribute_value(attrs, name)).decode() for name in read))
        desired = desired_by_key.get(key)
        if desired is None:
            desired = desired_by_key[key] = desired_groups(ctx.policies, attrs, state)
        affected = False
        for target, groups in managed.items():
            want = {g for g in desired.get(target, {}) if g in groups}
            known = have.get((identity.id, target), set())
            gains = want - known
            if gains and (identity.id, target) not in accounts and state not in _WANTS_ACCOUNT:
                gains = set()  # no account and none wanted (pre-hire): nothing to grant yet
            changes = [(g, "gain") for g in sorted(gains)] + [(g, "lose") for g in sorted(known - want)]
            for group, change in changes:
                diff.items.append(PolicyDriftItem(identity.employee_id, identity.display_name, target, group,
                                                  change))  # type: ignore[arg-type]
            affected = affected or bool(changes)
        if affected:
            diff.affected.append(identity.id)
    return diff


def _read_attributes(policies: Sequence[Policy]) -> list[str]:
    """Every attribute any policy's conditions read."""
    names: set[str] = set()

    def walk(condition: Condition) -> None:
        if isinstance(condition, AllOf | AnyOf):
            for child in (condition.all if isinstance(condition, AllOf) else condition.any):
                walk(child)
        elif isinstance(condition, Not):
            walk(condition.not_)
        elif isinstance(condition, Match):
            names.add(condition.attribute)

    for policy in policies:
        if policy.when is not None:
            walk(policy.when)
    return sorted(names)
