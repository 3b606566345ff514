"""The demo's SCIM app (the wiki: a real scim2-server in-process): what it holds per person,
read through its own SCIM API, checked against what the policies say."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from provisioner.demo.harness import SandboxedService

WIKI_GROUPS = ("Wiki Readers", "Wiki Editors")


async def wiki_state(svc: SandboxedService, employee_id: str) -> tuple[dict[str, Any] | None, set[str], int]:
    """(the account holding this externalId, its managed groups, how many accounts hold it)."""
    server = svc.scim["wiki"]
    found = await server.user_by_external_id(employee_id)
    user = found[0] if found else None
    groups = {g for g in WIKI_GROUPS if user and user["id"] in await server.group_members(g)}
    return user, groups, len(found)


async def report_wiki(svc: SandboxedService, console: Console,
                      expected: dict[str, tuple[bool | None, set[str]]]) -> list[str]:
    """``expected``: employee id -> (active, or None for no account; groups)."""
    failures: list[str] = []
    table = Table(title="per person in the wiki (read from scim2-server over SCIM)")
    for col in ("employee", "userName", "active", "wiki groups", "check"):
        table.add_column(col)
    for employee_id, (active, groups) in expected.items():
        user, actual, count = await wiki_state(svc, employee_id)
        problems = []
        if count > 1:
            problems.append(f"{count} accounts")
        if active is None and user is not None:
            problems.append("account still there")
        if active is not None and (user is None or user.get("active") is not active):
            problems.append(f"active {user and user.get('active')} != {active}")
        if actual != groups:
            problems.append(f"groups {sorted(actual)} != {sorted(groups)}")
        failures += [f"{employee_id} (wiki): {p}" for p in problems]
        table.add_row(employee_id, user["userName"] if user else "-", str(user.get("active")) if user else "deleted",
                      ", ".join(sorted(actual)) or "-",
                      "[green]ok[/]" if not problems else "[red]" + "; ".join(problems) + "[/]")
    console.print(table)
    return failures
