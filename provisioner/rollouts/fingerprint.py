"""The fingerprint of a policy set: SHA-256 over the canonical content of what decides desired
state, the loaded policies and each target's managed groups.

Hashed after parsing, so file names, file order, key order, whitespace, comments, group order
within a grant, the order of ``all``/``any`` members and ``one_of`` values, and a
policy's ``description`` do not change it; a grant naming a group by its
object id and one naming it by its name are the same grant. Anything that can change who should
be in which group (a condition, ``states``, a granted group, a managed group) does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioner.jsonutil import canonical
from provisioner.policies.schemas import Policy
from provisioner.targets.config import TargetConfig

VERSION = 1  # bump when the canonical form changes (every set then counts as new once)


def _condition(value: Any) -> Any:
    """Conditions as plain data; ``one_of`` values and ``all``/``any`` members as sets (their
    order means nothing)."""
    if isinstance(value, dict):
        out = {k: _condition(v) for k, v in value.items()}
        if isinstance(out.get("one_of"), list):
            out["one_of"] = sorted(out["one_of"], key=str)
        for key in ("all", "any"):
            if isinstance(out.get(key), list):
                out[key] = sorted(out[key], key=canonical)
        return out
    if isinstance(value, list):
        return [_condition(v) for v in value]
    return value


def canonical_policy(policy: Policy) -> dict[str, Any]:
    data = policy.model_dump(mode="json", by_alias=True, exclude_none=True,
                             exclude={"description", "grants", "states", "when", "conflicts"})
    if policy.conflicts:  # separation of duties (absent: the form, and so the hash, of before)
        data["conflicts"] = sorted(canonical({"name": c.name, "groups": sorted([r.target, r.group] for r in c.groups)})
                                   .decode() for c in policy.conflicts)
    if policy.when is not None:
        data["when"] = _condition(policy.when.model_dump(mode="json", by_alias=True, exclude_none=True))
    data["states"] = sorted(set(policy.states))
    data["grants"] = {target: sorted(set(grant.groups)) for target, grant in policy.grants.items() if grant.groups}
    return data


def policy_set(policies: Sequence[Policy], targets: Mapping[str, TargetConfig]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "policies": sorted((canonical_policy(p) for p in policies), key=lambda p: p["name"]),
        "managed_groups": {name: sorted(set(t.managed_group_names())) for name, t in sorted(targets.items())},
    }


def fingerprint(policies: Sequence[Policy], targets: Mapping[str, TargetConfig]) -> str:
    return hashlib.sha256(canonical(policy_set(policies, targets))).hexdigest()


def policy_files(directory: Path) -> dict[str, str]:
    """Each policy file's SHA-256 (recorded with a rollout: which files made the set)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.glob("*.y*ml"))}
