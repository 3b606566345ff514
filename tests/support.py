"""Helpers for tests that drive the whole service: HR event builders and a view of what the
Graph sandbox actually holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.identities import repository as identities


def event(event_id: str, etype: str, emp: str, at: datetime | None = None, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": etype, "employee_id": emp,
                            "effective_at": (at or utcnow()).isoformat()}
    for key in ("immediate", "cancels_event_id"):
        if key in attrs:
            body[key] = attrs.pop(key)
    if attrs:
        body["attributes"] = attrs
    return body


def hire(event_id: str, emp: str, given: str, family: str, department: str, at: datetime | None = None,
         **attrs: Any) -> dict[str, Any]:
    return event(event_id, "hire", emp, at, given_name=given, family_name=family, department=department,
                 employment_type=attrs.pop("employment_type", "employee"), **attrs)


class EntraView:
    """What the Graph sandbox actually holds for a person (not what the service believes)."""

    def __init__(self, svc: SandboxedService) -> None:
        self.svc = svc

    def remote_id(self, employee_id: str) -> str | None:
        with self.svc.db.transaction() as session:
            person = identities.by_employee_id(session, employee_id)
            account = identities.account(session, person.id, "entra") if person else None
            return account.remote_id if account else None

    def user(self, employee_id: str) -> dict[str, Any] | None:
        rid = self.remote_id(employee_id)
        return self.svc.sandbox.user(rid) if rid else None

    def groups(self, employee_id: str) -> set[str]:
        rid = self.remote_id(employee_id)
        return {name for name, gid in self.svc.group_ids.items()
                if rid and rid in self.svc.sandbox.group_member_ids(gid)}

    async def count_users(self, employee_id: str) -> int:
        """Users in the sandbox holding this employee id, read over Graph's own API."""
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.svc.sandbox.app),
                                     base_url="http://127.0.0.1/v1.0") as client:
            resp = await client.get("/users", params={"$filter": f"employeeId eq '{employee_id}'"},
                                    headers={"Authorization": f"Bearer {self.svc.sandbox_token}"})
            resp.raise_for_status()
            return len(resp.json()["value"])

    def state(self, employee_id: str) -> str | None:
        with self.svc.db.transaction() as session:
            person = identities.by_employee_id(session, employee_id)
            return person.state if person else None

