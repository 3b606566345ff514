"""The read-back of ``provisioner bench kill-soak``: the sandbox tenant read over Graph's HTTP API
(users, managed groups, their members) and judged against what the policies say for each person.

- **lost**: access a person should have and does not: no account, a disabled account for someone
  active, a missing group.
- **duplicated**: more than one account carrying one employee id (a member twice in one group is
  impossible in Graph, so accounts are what can be duplicated).
- **wrong**: access that should not be there: an enabled account for a leaver or someone on leave,
  a managed group the policies do not grant (a mover's old group, a leaver's group), an account
  for someone never hired or for no employee of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from provisioner.bench.soak_people import Person
from provisioner.policies.schemas import Policy


@dataclass
class Tenant:
    users: list[dict[str, Any]]
    members: dict[str, set[str]]  # managed group name -> member object ids


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    people: set[str] = field(default_factory=set)  # employee ids named in any finding

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong)


def _collection(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every page of a Graph collection (``@odata.nextLink`` followed)."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = client.get(next_url, params=params)
        response.raise_for_status()
        body = response.json()
        items.extend(body["value"])
        next_url, params = body.get("@odata.nextLink"), None
    return items


def read_tenant(graph_url: str, token: str, managed: set[str]) -> Tenant:
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        users = _collection(client, f"{graph_url}/users",
                            {"$select": "id,userPrincipalName,employeeId,accountEnabled", "$top": "999"})
        groups = _collection(client, f"{graph_url}/groups", {"$select": "id,displayName", "$top": "999"})
        members = {}
        for group in groups:
            if group["displayName"] in managed:
                found = _collection(client, f"{graph_url}/groups/{group['id']}/members",
                                    {"$select": "id", "$top": "999"})
                members[group["displayName"]] = {m["id"] for m in found}
    return Tenant(users, members)


def judge(tenant: Tenant, people: list[Person], policies: list[Policy]) -> Verdict:
    verdict = Verdict()
    by_employee: dict[str, list[dict[str, Any]]] = {}
    for user in tenant.users:
        by_employee.setdefault(user.get("employeeId") or "", []).append(user)
    known = {p.employee_id for p in people}
    for employee_id, users in by_employee.items():
        if employee_id not in known:
            verdict.wrong += [f"account {u['userPrincipalName']} ({u['id']}) belongs to no employee of the run "
                              f"(employeeId {employee_id or 'empty'})" for u in users]
    groups_of: dict[str, set[str]] = {}
    for group, member_ids in tenant.members.items():
        for member in member_ids:
            groups_of.setdefault(member, set()).add(group)
    for person in people:
        users = by_employee.get(person.employee_id, [])
        who = f"{person.employee_id} ({person.state or 'never hired'}; {' '.join(person.history)})"
        if len(users) > 1:
            verdict.duplicated.append(f"{who}: {len(users)} accounts: "
                                      + ", ".join(f"{u['userPrincipalName']} ({u['id']})" for u in users))
        if person.state is None:
            verdict.wrong += [f"{who}: account {u['userPrincipalName']} exists" for u in users]
            continue
        expected = person.expected_groups(policies)
        held = set().union(*(groups_of.get(u["id"], set()) for u in users))
        if not users and person.state != "terminated":
            verdict.lost.append(f"{who}: no account")
        for user in users:
            if person.state == "active" and not user.get("accountEnabled"):
                verdict.lost.append(f"{who}: account {user['userPrincipalName']} disabled")
            if person.state != "active" and user.get("accountEnabled"):
                verdict.wrong.append(f"{who}: account {user['userPrincipalName']} enabled")
        if users:
            verdict.lost += [f"{who}: not in {g}" for g in sorted(expected - held)]
        verdict.wrong += [f"{who}: in {g}, which the policies do not grant" for g in sorted(held - expected)]
    for item in verdict.lost + verdict.duplicated + verdict.wrong:
        if item.split(" ", 1)[0] in known:
            verdict.people.add(item.split(" ", 1)[0])
    member_ids = set().union(*tenant.members.values()) if tenant.members else set()
    account_ids = {u["id"] for u in tenant.users}
    verdict.wrong += [f"unknown object {m} in a managed group" for m in sorted(member_ids - account_ids)]
    return verdict
