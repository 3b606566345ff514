"""Load and validate every policy file; errors come back as ``file:line: reason``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from provisioner.policies.schemas import Policy
from provisioner.targets.config import ConfigError, TargetConfig


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[path + (k,)] = key.start_mark.line + 1
            _line_map(value, path + (k,), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, path + (index,), out)


def _yaml_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic's error location without the union tags it inserts: only the parts that index
    into the YAML data itself."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _line_for(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def load_policy_file(path: Path, targets: Mapping[str, TargetConfig] | None = None) -> Policy:
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([f"{path}:{(mark.line + 1) if mark else 1}: not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}"]) from exc
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_map(node, (), lines)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: a policy file holds one mapping (name, when, grants)"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen = set()
        for err in exc.errors(include_url=False):
            at = _yaml_path(data, tuple(err["loc"]))
            line = _line_for(lines, at)
            field = ".".join(str(p) for p in at)
            msg = err["msg"].removeprefix("Value error, ")
            text_line = f"{path}:{line}: {field or '(file)'}: {msg}"
            if text_line not in seen:
                seen.add(text_line)
                problems.append(text_line)
        raise ConfigError(problems) from exc
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
