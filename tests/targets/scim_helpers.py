"""Helpers for tests of SCIM targets: the whole service with the wiki's scim2-server in-process,
a transport that records every request to it, and a view of what the server holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from provisioner.demo.harness import SandboxedService
from provisioner.identities import repository as identities
from tests.support import event, hire

FAST = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, "max_attempts": 4}


class RequestLog(httpx.AsyncBaseTransport):
    """Records (method, resource, headers) of each request reaching the SCIM server."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, httpx.Headers]] = []
        self.before: Any = None  # an async hook called with each request before it is sent

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((m, p) for m, p, _ in self.requests)

    def clear(self) -> None:
        self.requests.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/v2/", 1)[-1].split("/")
        self.requests.append((request.method, parts[0], request.headers))
        if self.before is not None:
            await self.before(request)
        return await self.inner.handle_async_request(request)


def scim_service(tmp_path: Path, database_url: str, **options: Any) -> tuple[SandboxedService, RequestLog]:
    logs: dict[str, RequestLog] = {}

    def wrap(name: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if name != "wiki":
            return transport
        logs[name] = RequestLog(transport)
        return logs[name]

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={**FAST, **options.pop("settings", {})}, wrap_transport=wrap, **options)
    return svc, logs["wiki"]


class WikiView:
    """What the wiki's scim2-server holds for a person, read through its own SCIM API."""

    def __init__(self, svc: SandboxedService) -> None:
        self.svc = svc
        self.server = svc.scim["wiki"]

    def remote_id(self, employee_id: str) -> str | None:
        with self.svc.db.transaction() as session:
            person = identities.by_employee_id(session, employee_id)
            account = identities.account(session, person.id, "wiki") if person else None
            return account.remote_id if account else None

    async def accounts(self, employee_id: str) -> list[dict[str, Any]]:
        return await self.server.user_by_external_id(employee_id)

    async def user(self, employee_id: str) -> dict[str, Any] | None:
        found = await self.accounts(employee_id)
        assert len(found) <= 1, f"{len(found)} accounts hold externalId {employee_id}"
        return found[0] if found else None

    async def groups(self, employee_id: str) -> set[str]:
        user = await self.user(employee_id)
        if user is None:
            return set()
        return {name for name in ("Wiki Readers", "Wiki Editors")
                if user["id"] in await self.server.group_members(name)}


async def hired_then_terminated(svc: SandboxedService, wiki: WikiView, emp: str, given: str, family: str,
                                department: str) -> str:
    """Hire a person, then terminate them at once; the id of their wiki account."""
    await svc.send(hire(f"{emp}-hire", emp, given, family, department))
    await svc.drain()
    remote_id = wiki.remote_id(emp)
    assert remote_id is not None, f"{emp} has no wiki account"
    await svc.send(event(f"{emp}-terminate", "terminate", emp))
    await svc.drain()
    return remote_id
