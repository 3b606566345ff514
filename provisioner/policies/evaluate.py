"""Evaluate policies against one identity: the access it should have in each target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provisioner.policies.schemas import (
    AllOf,
    AnyOf,
    Condition,
    Match,
    Not,
    Policy,
    attribute_value,
)


def _norm(value: Any) -> str:
    return str(value).strip().casefold()


def matches(condition: Condition, attrs: dict[str, Any]) -> bool:
    if isinstance(condition, AllOf):
        return all(matches(c, attrs) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(matches(c, attrs) for c in condition.any)
    if isinstance(condition, Not):
        return not matches(condition.not_, attrs)
    assert isinstance(condition, Match)
    value = attribute_value(attrs, condition.attribute)
    if "equals" in condition.model_fields_set:
        if condition.equals is None:
            return value in (None, "")
        return value is not None and _norm(value) == _norm(condition.equals)
    if value is None:
        return False
    if condition.one_of is not None:
        return _norm(value) in {_norm(v) for v in condition.one_of}
    assert condition.prefix is not None
    return _norm(value).startswith(_norm(condition.prefix))


def applies(policy: Policy, attrs: dict[str, Any], state: str) -> bool:
    if state not in policy.states:
        return False
    return policy.birthright or (policy.when is not None and matches(policy.when, attrs))


def desired_groups(policies: Sequence[Policy], attrs: dict[str, Any], state: str) -> dict[str, dict[str, list[str]]]:
    """Per target, each granted group with the policies that grant it (for the access diff)."""
    out: dict[str, dict[str, list[str]]] = {}
    for policy in policies:
        if not applies(policy, attrs, state):
            continue
        for target, grant in policy.grants.items():
            for group in grant.groups:
                out.setdefault(target, {}).setdefault(group, []).append(policy.name)
    return out
