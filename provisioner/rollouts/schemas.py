"""What a population-wide policy diff and a rollout report: plain values, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Change = Literal["gain", "lose"]
# Per target and group, the people listed in a stored rollout's diff (the counts are never capped).
DIFF_PEOPLE_CAP = 100


@dataclass(frozen=True, slots=True)
class PolicyDriftItem:
    """One person whose known (or already planned) membership differs from what the policies
    grant: ``gain`` a group they should be in, ``lose`` one they should no longer be in."""

    employee_id: str | None
    display_name: str | None
    target: str
    group: str
    change: Change


@dataclass
class PopulationDiff:
    """Desired (policies) against known (memberships, with planned changes) for everyone."""

    population: int = 0  # identities evaluated
    items: list[PolicyDriftItem] = field(default_factory=list)
    affected: list[str] = field(default_factory=list)  # identity ids to re-plan

    def by_group(self) -> dict[str, dict[str, dict[str, list[PolicyDriftItem]]]]:
        """target -> group -> {"gain": [...], "lose": [...]}, sorted by name."""
        out: dict[str, dict[str, dict[str, list[PolicyDriftItem]]]] = {}
        for item in self.items:
            slot = out.setdefault(item.target, {}).setdefault(item.group, {"gain": [], "lose": []})
            slot[item.change].append(item)
        return {t: {g: out[t][g] for g in sorted(out[t])} for t in sorted(out)}

    def counts(self) -> dict[str, Any]:
        gains = sum(i.change == "gain" for i in self.items)
        targets: dict[str, Any] = {}
        for target, groups in self.by_group().items():
            targets[target] = {
                "gains": sum(len(g["gain"]) for g in groups.values()),
                "losses": sum(len(g["lose"]) for g in groups.values()),
                "groups": {name: {"gain": len(g["gain"]), "lose": len(g["lose"])} for name, g in groups.items()},
            }
        return {"population": self.population, "people": len(self.affected), "gains": gains,
                "losses": len(self.items) - gains, "targets": targets}

    def as_json(self, *, cap: int | None = None) -> dict[str, Any]:
        """Per target and group, who gains and who loses (employee id and name), with counts;
        ``cap`` limits the people listed per list (the counts stay exact)."""
        def people(items: list[PolicyDriftItem]) -> list[dict[str, Any]]:
            ordered = sorted(items, key=lambda i: (i.employee_id or "", i.display_name or ""))
            return [{"employee_id": i.employee_id, "display_name": i.display_name}
                    for i in (ordered if cap is None else ordered[:cap])]

        return {target: {group: {"gain_count": len(g["gain"]), "lose_count": len(g["lose"]),
                                 "gain": people(g["gain"]), "lose": people(g["lose"])}
                         for group, g in groups.items()}
                for target, groups in self.by_group().items()}


@dataclass
class RolloutResult:
    """What a start or reload did about the policy set it found."""

    fingerprint: str
    previous_fingerprint: str | None
    outcome: Literal["unchanged", "applied", "held", "rejected", "stopped", "busy"]
    trigger: str
    counts: dict[str, Any] = field(default_factory=dict)
    replanned: int = 0
    rollout_id: int | None = None
