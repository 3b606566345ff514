"""Load and validate every policy file; errors come back as ``file:line: reason``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provisioner.policies.schemas import Policy
from provisioner.targets.config import ConfigError, TargetConfig
from provisioner.yaml_lines import read_mapping, validate


def load_policy_file(path: Path, targets: Mapping[str, TargetConfig] | None = None) -> Policy:
    data, lines = read_mapping(path, "a policy file holds one mapping (name, when, grants)")
    policy = validate(Policy, data, lines, path)
    if targets is not None:
        problems = []
        for target, grant in policy.grants.items():
            where = lines.get(("grants", target), 1)
            if target not in targets:
                problems.append(f"{path}:{where}: grants.{target}: no target named {target!r} "
                                f"(declared: {', '.join(sorted(targets)) or 'none'})")
                continue
            managed = set(targets[target].managed_group_names())
            by_id = {g.id.lower(): g.name for g in targets[target].managed_groups if g.id}
            for index, group in enumerate(grant.groups):
                if group not in managed and group.lower() not in by_id:
                    line = lines.get(("grants", target, "groups", index), where)
                    problems.append(f"{path}:{line}: grants.{target}.groups: {group!r} is not a "
                                    f"managed group of target {target!r}; declare it in its targets/ file")
        for index, conflict in enumerate(policy.conflicts):
            for g_index, ref in enumerate(conflict.groups):
                line = lines.get(("conflicts", index, "groups", g_index), lines.get(("conflicts",), 1))
                target = targets.get(ref.target)
                if target is None:
                    problems.append(f"{path}:{line}: conflicts.{index}.groups: no target named {ref.target!r}")
                elif ref.group not in target.managed_group_names() and ref.group.lower() not in {
                        g.id.lower() for g in target.managed_groups if g.id}:
                    problems.append(f"{path}:{line}: conflicts.{index}.groups: {ref.group!r} is not a managed "
                                    f"group of target {ref.target!r}; declare it in its targets/ file")
        if problems:
            raise ConfigError(problems)
        policy = _names_for_ids(policy, targets)
    return policy


def _names_for_ids(policy: Policy, targets: Mapping[str, TargetConfig]) -> Policy:
    """A grant may name a managed group by its object id; plans and memberships use its name."""
    grants = {}
    for target, grant in policy.grants.items():
        by_id = {g.id.lower(): g.name for g in targets[target].managed_groups if g.id}
        groups = [by_id.get(group.lower(), group) for group in grant.groups]
        grants[target] = grant.model_copy(update={"groups": groups})
    conflicts = []
    for conflict in policy.conflicts:
        refs = []
        for ref in conflict.groups:
            by_id = {g.id.lower(): g.name for g in targets[ref.target].managed_groups if g.id}
            refs.append(ref.model_copy(update={"group": by_id.get(ref.group.lower(), ref.group)}))
        conflicts.append(conflict.model_copy(update={"groups": refs}))
    return policy.model_copy(update={"grants": grants, "conflicts": conflicts})


def load_policies(directory: Path, targets: Mapping[str, TargetConfig] | None = None) -> list[Policy]:
    policies: list[Policy] = []
    problems: list[str] = []
    names: dict[str, Path] = {}
    seen_rules: dict[str, Path] = {}
    for path in sorted(directory.glob("*.y*ml")):
        try:
            policy = load_policy_file(path, targets)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        clash = {c.name for c in policy.conflicts} & seen_rules.keys()
        for rule in sorted(clash):
            problems.append(f"{path}:1: conflicts: rule {rule!r} is also defined in {seen_rules[rule]}")
        seen_rules.update({c.name: path for c in policy.conflicts})
        if policy.name in names:
            problems.append(f"{path}:1: name: policy {policy.name!r} is also defined in {names[policy.name]}")
        names[policy.name] = path
        policies.append(policy)
    if problems:
        raise ConfigError(problems)
    return policies
