"""The HR side of ``provisioner bench kill-soak``: a population, a realistic stream of signed HR
events about it (joiners, movers, leaves and returns, leavers, rehires), and what the policies
say each person should have in Entra ID once every event is applied.

The soak keeps its own record of what it told HR's side of the story; the read-back compares the
sandbox with that record, never with the service's database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from provisioner.policies.evaluate import desired_groups
from provisioner.policies.loader import load_policies
from provisioner.policies.schemas import Policy
from provisioner.targets.config import load_targets

TARGET = "entra"
# Few names, so two people often share one and the login collision path (ada.lovelace2) is taken.
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
          "Perlman", "Lee", "Ritchie", "Hamilton", "Shannon", "Kay", "Backus"]
DEPARTMENTS = ["Engineering", "Sales", "Finance", "Support", "Marketing"]
LOCATIONS = ["DE-BER-01", "DE-MUC-01", "US-NYC-01", "GB-LON-01"]
JOB_CODES = {"Engineering": ["ENG1", "ENG2", "MGR1"], "Sales": ["SE1", "AE1", "MGR2"],
             "Finance": ["FIN1", "DIR1"], "Support": ["SUP1", "SUP2"], "Marketing": ["MKT1", "MGR1"]}
TITLES = ["Engineer", "Analyst", "Head of Operations", "Specialist", "Lead"]


def write_config(folder: Path, repo: Path, graph_url: str) -> tuple[Path, Path]:
    """The repository's sample policies with their Entra grants only, and one Entra target
    pointed at the sandbox process (its managed groups as in ``targets/entra.yaml``)."""
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True)
    targets.mkdir(parents=True)
    entra = yaml.safe_load((repo / "targets" / "entra.yaml").read_text())
    entra.update(graph_url=graph_url, throttle={"writes_per_second": 500, "burst": 200, "concurrency": 4})
    (targets / "entra.yaml").write_text(yaml.safe_dump(entra))
    for path in sorted((repo / "policies").glob("*.y*ml")):
        policy = yaml.safe_load(path.read_text())
        policy["grants"] = {t: g for t, g in policy["grants"].items() if t == TARGET}
        if policy["grants"]:
            (policies / path.name).write_text(yaml.safe_dump(policy))
    return policies, targets


def load_rules(policies: Path, targets: Path) -> tuple[list[Policy], set[str]]:
    """The policies and the Entra target's managed group names."""
    loaded = load_targets(targets)
    return load_policies(policies, loaded), {g.name for g in loaded[TARGET].managed_groups}


@dataclass
class Person:
    employee_id: str
    state: str | None = None  # None: never hired; then active, on_leave, terminated
    attributes: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # "t3:transfer" ...

    def expected_groups(self, policies: list[Policy]) -> set[str]:
        if self.state is None:
            return set()
        attrs = {**self.attributes, "employee_id": self.employee_id}
        return set(desired_groups(policies, attrs, self.state).get(TARGET, {}))


class Population:
    """People and the events that move them, one event per person per trial at most (so
    a trial's events can be sent concurrently in any order)."""

    def __init__(self, size: int, trials: int, rng: random.Random, run: str) -> None:
        self.rng, self.run = rng, run
        self.people = [Person(f"S{run}-{n:05d}") for n in range(size)]
        self._unhired = list(self.people)
        self._hires_per_trial = -(-size // max(1, trials))
        self._seq = 0
        self.counts: dict[str, int] = {}

    def _attributes(self) -> dict[str, Any]:
        rng = self.rng
        department = rng.choice(DEPARTMENTS)
        return {"given_name": rng.choice(GIVEN), "family_name": rng.choice(FAMILY), "department": department,
                "job_code": rng.choice(JOB_CODES[department]), "title": rng.choice(TITLES),
                "location": rng.choice(LOCATIONS),
                "employment_type": "contractor" if rng.random() < 0.15 else "employee"}

    def _move(self) -> dict[str, Any]:
        """A mover: a new department (and job code), often a new site or title."""
        rng = self.rng
        department = rng.choice(DEPARTMENTS)
        change = {"department": department, "job_code": rng.choice(JOB_CODES[department])}
        if rng.random() < 0.5:
            change["location"] = rng.choice(LOCATIONS)
        if rng.random() < 0.3:
            change["title"] = rng.choice(TITLES)
        return change

    def trial_events(self, trial: int) -> list[dict[str, Any]]:
        """This trial's events, each effective now (a strictly increasing time)."""
        rng, events = self.rng, []
        known = [p for p in self.people if p.state is not None]
        rng.shuffle(known)
        for person in known:
            roll = rng.random()
            if person.state == "active":
                if roll < 0.12:
                    events.append(self._event(trial, person, "transfer", attributes=self._move()))
                elif roll < 0.18:
                    events.append(self._event(trial, person, "terminate", immediate=rng.random() < 0.5))
                elif roll < 0.21:
                    events.append(self._event(trial, person, "leave"))
            elif person.state == "on_leave":
                if roll < 0.5:
                    events.append(self._event(trial, person, "return"))
                elif roll < 0.6:
                    events.append(self._event(trial, person, "terminate"))
                elif roll < 0.7:
                    events.append(self._event(trial, person, "transfer", attributes=self._move()))
            elif person.state == "terminated" and roll < 0.1:
                events.append(self._event(trial, person, "rehire", attributes=self._attributes()))
        hires, self._unhired = self._unhired[:self._hires_per_trial], self._unhired[self._hires_per_trial:]
        events.extend(self._event(trial, p, "hire", attributes=self._attributes()) for p in hires)
        rng.shuffle(events)
        return events

    def _event(self, trial: int, person: Person, kind: str, *, attributes: dict[str, Any] | None = None,
               immediate: bool = False) -> dict[str, Any]:
        self._seq += 1
        at = datetime.now(UTC) - timedelta(seconds=2) + timedelta(microseconds=self._seq)
        event: dict[str, Any] = {"event_id": f"soak-{self.run}-{self._seq:06d}", "type": kind,
                                 "employee_id": person.employee_id, "effective_at": at.isoformat()}
        if attributes:
            event["attributes"] = attributes
        if immediate:
            event["immediate"] = True
        # The record of what HR said: the state the lifecycle moves to, attributes merged.
        person.state = {"hire": "active", "rehire": "active", "return": "active", "leave": "on_leave",
                        "terminate": "terminated"}.get(kind, person.state)
        if kind in ("hire", "rehire"):
            person.attributes = dict(attributes or {})
        elif attributes:
            person.attributes.update(attributes)
        person.history.append(f"t{trial}:{kind}")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return event
