"""Additions are never sent twice for the same membership: plans that overlap while a group
addition is being sent (running, so not withdrawn) leave it to that operation. scimmy stores a
member added twice twice, so it shows what was sent; read back over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from provisioner.demo.harness import SandboxedService
from provisioner.queue.models import Operation
from tests.servers.launch import RunningServer
from tests.support import event, hire
from tests.targets.scim_helpers import FAST
from tests.targets.test_scim_scimmy import ScimmyView, scimmy  # noqa: F401  (the fixture)


class Hooked(httpx.AsyncBaseTransport):
    """A real HTTP transport to scimmy that calls ``before(request)`` first and records writes."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(retries=0)
        self.before: Any = None
        self.writes: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode() if request.method != "GET" else ""
        if request.method != "GET":
            self.writes.append((request.method, request.url.path, body))
        if self.before is not None:
            await self.before(request, body)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def sent_additions(hooked: Hooked, member_id: str, group_id: str) -> int:
    """Requests that carried this member's addition to this group (PATCH or inside Bulk)."""
    return sum(1 for method, path, body in hooked.writes
               if member_id in body and '"add"' in body.replace("'", '"').lower()
               and (group_id in path or group_id in body))


async def test_overlapping_plans_while_an_addition_runs_send_it_once(
        database_url: str, tmp_path: Path, scimmy: RunningServer):  # noqa: F811
    hooked = Hooked()
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, settings=FAST,
                           scim_servers={"wiki": (scimmy.base_url, scimmy.token)},
                           wrap_transport=lambda name, t: hooked if name == "wiki" else t)
    wiki = ScimmyView(scimmy, svc)
    try:
        await svc.send(hire("o1", "O1", "Olga", "Overlap", "Sales"))
        await svc.drain()
        rid = wiki.remote_id("O1")
        assert wiki.groups("O1") == {"Wiki Readers"}
        readers = wiki.group("Wiki Readers")["id"]
        replanned: list[str] = []
        other_loop: list[asyncio.Task] = []

        async def two_more_plans(request: httpx.Request, body: str) -> None:
            # While the move's addition to Wiki Editors is on its way, two more HR updates of
            # the same person are planned (the addition is running: not withdrawn), and another
            # worker loop runs a round meanwhile.
            if (replanned or request.method == "GET" or rid not in body or "members" not in body
                    or readers in body + request.url.path):
                return
            replanned.append(request.method)
            for n, title in enumerate(("Engineer", "Senior Engineer")):
                assert (await svc.send(event(f"o3-{n}", "update", "O1", title=title))).status_code == 202
                await svc.runtime.process_events()
            # (a task: the outer request holds the target's concurrency slot until it returns)
            other_loop.append(asyncio.create_task(svc.runtime.worker.run_once()))
            await asyncio.sleep(0.5)  # it has claimed what is ready by now

        hooked.before = two_more_plans
        await svc.send(event("o2", "transfer", "O1", department="Engineering"))
        await svc.drain()
        await asyncio.gather(*other_loop)
        await svc.drain()
        assert replanned, "the addition to Wiki Editors was never sent"
        editors = wiki.group("Wiki Editors")["id"]
        # Stored once, read back from the app.
        assert wiki.member_ids("Wiki Editors").count(rid) == 1
        assert wiki.groups("O1") == {"Wiki Readers", "Wiki Editors"}
        assert wiki.user("O1")["title"] == "Senior Engineer"
        # One addition in the op rows, and one sent.
        with svc.db.read() as session:
            adds = [(op.status, op.attempts) for op in session.scalars(select(Operation).where(
                Operation.target == "wiki", Operation.kind == "add_member",
                Operation.group_key == "Wiki Editors"))]
        assert adds == [("succeeded", 1)]
        assert sent_additions(hooked, rid, editors) == 1
    finally:
        await svc.close()
