"""What a running SCIM server holds, read over its own HTTP API (never through the connector):
a person's account by the id the service recorded, and the managed groups holding it."""

from __future__ import annotations

from typing import Any

from provisioner.demo.harness import SandboxedService
from provisioner.identities import repository as identities
from tests.servers.launch import RunningServer

MANAGED = ("Wiki Readers", "Wiki Editors")


class ServerView:
    def __init__(self, server: RunningServer, svc: SandboxedService, target: str = "wiki") -> None:
        self.server = server
        self.svc = svc
        self.target = target

    def remote_id(self, employee_id: str) -> str | None:
        with self.svc.db.transaction() as session:
            person = identities.by_employee_id(session, employee_id)
            account = identities.account(session, person.id, self.target) if person else None
            return account.remote_id if account else None

    def get_user(self, remote_id: str) -> tuple[int, dict[str, Any] | None]:
        """``GET /Users/{id}``: the status and, on 200, the resource."""
        with self.server.client() as client:
            resp = client.get(f"/Users/{remote_id}")
        return resp.status_code, (resp.json() if resp.status_code == 200 else None)

    def user(self, employee_id: str) -> dict[str, Any] | None:
        rid = self.remote_id(employee_id)
        if rid is None:
            return None
        status, body = self.get_user(rid)
        assert status in (200, 404), f"GET /Users/{rid}: {status}"
        return body

    def groups_by_name(self) -> dict[str, str]:
        """Every group (listed page by page), displayName -> id."""
        found: dict[str, str] = {}
        start = 1
        with self.server.client() as client:
            while True:
                resp = client.get("/Groups", params={"startIndex": start, "count": 50})
                resp.raise_for_status()
                body = resp.json()
                page = body.get("Resources") or []
                for group in page:
                    found[group["displayName"]] = str(group["id"])
                start += len(page)
                if not page or start > int(body.get("totalResults") or 0):
                    return found

    def members(self, group_id: str) -> set[str]:
        with self.server.client() as client:
            resp = client.get(f"/Groups/{group_id}")
        resp.raise_for_status()
        return {str(m["value"]) for m in resp.json().get("members") or []}

    def groups_holding(self, remote_id: str) -> set[str]:
        """The managed groups whose member list holds ``remote_id``."""
        return {name for name, gid in self.groups_by_name().items()
                if name in MANAGED and remote_id in self.members(gid)}

    def groups(self, employee_id: str) -> set[str]:
        rid = self.remote_id(employee_id)
        return self.groups_holding(rid) if rid else set()
