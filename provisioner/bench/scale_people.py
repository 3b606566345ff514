"""The company of ``provisioner bench scale``: N people as an HR extract, policies giving each
about ``groups_per_person`` Entra groups with a realistic skew, and what the tenant must hold.

Each person falls in one value of each *dimension* (department, site, cost centre, job family,
level, employment type, region, then extra dimensions when more groups are asked for); every
value is one policy file granting one managed group, and "all staff" is a birthright. Values
are drawn with a Zipf-like skew (a few large departments, a long tail of small cost centres).
The expected memberships are known by construction and checked against the policy evaluator on
a sample (:func:`Company.check_against_policies`), so the read-back judges against the policies.
"""

from __future__ import annotations

import csv
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provisioner.policies.evaluate import desired_groups
from provisioner.policies.loader import load_policies
from provisioner.targets.config import load_targets

TARGET = "entra"
ALL_STAFF = "Scale All Staff"
ROLLOUT_GROUP = "Scale Rollout Wave"  # managed from the start, granted only by the rollout's policy
BATCH = 20  # members@odata.bind per PATCH, items per $batch
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret",
         "Dennis", "Katherine", "John", "Hedy", "Claude", "Sophie", "Linus", "Anita", "Niklaus"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
          "Ritchie", "Hamilton", "Shannon", "Backus", "Wirth", "Borg", "Lamarr", "Johnson", "Wilson"]
DEPARTMENTS = ["Engineering", "Sales", "Support", "Operations", "Marketing", "Finance", "Product", "Legal",
               "People", "Research", "Security", "Data", "Design", "Procurement", "Facilities", "Quality",
               "Logistics", "Partnerships", "Communications", "Strategy"]
SITES = ["EU-BER", "EU-LON", "US-NYC", "EU-PAR", "US-SFO", "AP-SIN", "EU-MAD", "US-AUS", "AP-TOK", "AP-SYD"]
FAMILIES = ["ENG", "SAL", "SUP", "OPS", "MKT", "FIN", "PRD", "LEG", "HRS", "RES", "SEC", "DAT"]
LEVELS = ["L1", "L2", "L3", "L4", "L5", "L6"]
COST_CENTRES = [f"CC{1000 + n}" for n in range(50)]


@dataclass(frozen=True)
class Dimension:
    """One way people are grouped: ``values`` drawn with ``weights``; ``condition(value)`` is the
    policy's ``when``; ``group(value)`` the granted group."""

    key: str
    values: list[str]
    weights: list[float]
    attribute: str  # the CSV column / policy attribute
    prefix: bool = False  # the policy matches a prefix of the attribute (job family, region)


def _zipf(n: int, s: float = 0.8) -> list[float]:
    return [1 / (k + 1) ** s for k in range(n)]


def dimensions(groups_per_person: int) -> list[Dimension]:
    """The dimensions after "all staff", as many as ``groups_per_person - 1``."""
    base = [
        Dimension("dept", DEPARTMENTS, _zipf(len(DEPARTMENTS)), "department"),
        Dimension("site", SITES, _zipf(len(SITES), 0.6), "location"),
        Dimension("cc", COST_CENTRES, _zipf(len(COST_CENTRES), 1.0), "cost_center"),
        Dimension("family", FAMILIES, _zipf(len(FAMILIES)), "job_code", prefix=True),
        Dimension("level", LEVELS, [30, 30, 20, 12, 6, 2], "extra.level"),
        Dimension("type", ["employee", "contractor"], [85, 15], "employment_type"),
        Dimension("region", ["EU", "US", "AP"], [1, 1, 1], "location", prefix=True),  # follows the site
    ]
    extra = [Dimension(f"d{k}", [f"V{v:02d}" for v in range(10)], _zipf(10), f"extra.d{k}")
             for k in range(max(0, groups_per_person - 1 - len(base)))]
    return (base + extra)[:max(0, groups_per_person - 1)]


def group_name(dim: Dimension, value: str) -> str:
    return f"Scale {dim.key} {value}"


@dataclass
class Company:
    """The people (CSV rows) and, per person, the groups the policies grant."""

    dims: list[Dimension]
    rows: list[dict[str, str]] = field(default_factory=list)
    expected: dict[str, set[str]] = field(default_factory=dict)  # employee id -> group names

    @property
    def groups(self) -> list[str]:
        names = [ALL_STAFF] + [group_name(d, v) for d in self.dims for v in d.values]
        return names + [ROLLOUT_GROUP]

    def members_per_group(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for groups in self.expected.values():
            for g in groups:
                counts[g] = counts.get(g, 0) + 1
        return counts

    @property
    def memberships(self) -> int:
        return sum(len(g) for g in self.expected.values())

    def minimum_writes(self) -> int:
        """N creates + per group ceil(members / 20) bind PATCHes."""
        return len(self.rows) + sum(math.ceil(n / BATCH) for n in self.members_per_group().values())

    def check_against_policies(self, policies_dir: Path, targets_dir: Path, sample: int = 300) -> None:
        """The construction agrees with the policy evaluator (a sample of people, as the planner sees them)."""
        policies = load_policies(policies_dir, load_targets(targets_dir))
        for row in self.rows[:: max(1, len(self.rows) // sample)]:
            got = set(desired_groups(policies, _attributes(row), "active").get(TARGET, {}))
            if got != self.expected[row["employee_id"]]:
                raise AssertionError(f"{row['employee_id']}: policies grant {sorted(got)}, "
                                     f"expected {sorted(self.expected[row['employee_id']])}")


def _attributes(row: dict[str, str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {k: v for k, v in row.items() if k in ("employee_id", "department", "location",
                                                                     "cost_center", "job_code", "employment_type")}
    attrs["extra"] = {k: v for k, v in row.items() if k.startswith("level") or re.fullmatch(r"d\d+", k)}
    return attrs


def _alpha(n: int, width: int = 4) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
    return out


DIVISIONS = ("Corporate", "Products", "Field Operations", "Research")


def generate(people: int, groups_per_person: int, seed: int = 11) -> Company:
    """N people with unique logins (given.family never collides) and their expected groups."""
    rng = random.Random(seed)
    company = Company(dimensions(groups_per_person))
    for n in range(people):
        emp = f"E{n:06d}"
        row = {"employee_id": emp, "given_name": GIVEN[n % len(GIVEN)],
               "family_name": FAMILY[(n // len(GIVEN)) % len(FAMILY)] + _alpha(n).capitalize(),
               "title": "Staff",
               # HR data Entra ID gets in the same create (issue 13): employeeHireDate,
               # employeeOrgData.division, companyName; none costs a request of its own.
               "start_date": f"20{10 + n % 15:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}",
               "division": DIVISIONS[n % len(DIVISIONS)], "company": "Contoso Ltd"}
        groups = {ALL_STAFF}
        for dim in company.dims:
            if dim.key == "region":
                value = row["location"].split("-", 1)[0]
            else:
                value = rng.choices(dim.values, dim.weights)[0]
                if dim.key == "family":
                    row["job_code"] = f"{value}-{rng.randint(1, 4)}"
                else:
                    row[dim.attribute.removeprefix("extra.")] = value
            groups.add(group_name(dim, value))
        company.rows.append(row)
        company.expected[emp] = groups
    return company


def write_csv(company: Company, path: Path) -> Path:
    columns: list[str] = []
    for row in company.rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(company.rows)
    return path


def _policy(dim: Dimension, value: str) -> dict[str, Any]:
    match = {"attribute": dim.attribute, ("prefix" if dim.prefix else "equals"): f"{value}-" if dim.prefix else value}
    return {"name": f"scale-{dim.key}-{value}".lower(), "when": match,
            "grants": {TARGET: {"groups": [group_name(dim, value)]}}}


def write_config(folder: Path, company: Company, graph_url: str, *, writes_per_second: float = 500.0,
                 burst: int = 200, concurrency: int = 4) -> tuple[Path, Path]:
    """``policies/`` (one file per group) and ``targets/entra.yaml`` pointed at the sandbox process."""
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    (targets / "entra.yaml").write_text(yaml.safe_dump({
        "kind": "entra", "name": TARGET, "graph_url": graph_url,
        "auth": {"method": "static_token", "token": {"env": "PROVISIONER_SANDBOX_TOKEN"}},
        "accounts": {"domain": "scale.example", "login_template": "{given_name}.{family_name}",
                     "usage_location": "DE"},
        "managed_groups": [{"name": g} for g in company.groups],
        "throttle": {"writes_per_second": writes_per_second, "burst": burst, "concurrency": concurrency}},
        sort_keys=False))
    (policies / "all-staff.yaml").write_text(yaml.safe_dump({
        "name": "scale-all-staff", "birthright": True, "grants": {TARGET: {"groups": [ALL_STAFF]}}}))
    for dim in company.dims:
        for value in dim.values:
            (policies / f"{dim.key}-{value}.yaml".lower()).write_text(yaml.safe_dump(_policy(dim, value)))
    return policies, targets


def add_rollout_policy(policies: Path, company: Company) -> int:
    """The rollout of figure 5: a birthright granting one more group to everyone; returns the
    memberships it adds (and records them as expected)."""
    (policies / "rollout-wave.yaml").write_text(yaml.safe_dump({
        "name": "scale-rollout-wave", "birthright": True, "grants": {TARGET: {"groups": [ROLLOUT_GROUP]}}}))
    for groups in company.expected.values():
        groups.add(ROLLOUT_GROUP)
    return len(company.expected)
