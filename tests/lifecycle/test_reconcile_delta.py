"""Reconciliation through Graph delta queries (the real msgraph-sdk's request adapter against the
Graph sandbox): after a first, full run, a run reads only the changes and still finds what was
done behind the service's back, and what was found before and is still there; an expired delta
link (410) is answered with a full read that finds the drift all the same; and the scheduled
reconcile runs once across processes sharing the database."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.clock import clock
from provisioner.demo.harness import SandboxedService
from provisioner.reconcile.models import ReconcileCursor
from provisioner.reconcile.schedule import LOCK, scheduled_reconcile
from provisioner.reconcile.service import ReconcileReport, reconcile
from tests.lifecycle.test_reconcile_drift import cli_over_sockets  # noqa: F401 (a fixture)
from tests.support import EntraView, event, hire


class Recorder(httpx.AsyncBaseTransport):
    """Every URL the Entra connector asked of Graph."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.urls = inner, []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def paths(self, suffix: str) -> list[dict[str, list[str]]]:
        """The query of each request whose path ends with ``suffix``."""
        return [parse_qs(urlsplit(u).query) for u in self.urls if urlsplit(u).path.endswith(suffix)]

    def member_listings(self) -> int:
        return len(self.paths("/members"))


@dataclass
class Svc:
    svc: SandboxedService
    graph: Recorder
    runs: list[ReconcileReport] = field(default_factory=list)

    async def reconcile(self, **kw) -> ReconcileReport:
        rt = self.svc.runtime
        self.graph.urls.clear()
        report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=kw.pop("fix", False), **kw)
        self.runs.append(report)
        return report

    async def enable_directly(self, remote_id: str) -> None:
        """Someone enables an account in Entra behind the service's back (Graph PATCH)."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.svc.sandbox.app),
                                     base_url="http://127.0.0.1/v1.0") as graph:
            resp = await graph.patch(f"/users/{remote_id}", json={"accountEnabled": True},
                                     headers={"Authorization": f"Bearer {self.svc.sandbox_token}"})
            assert resp.status_code == 204


@pytest.fixture
async def recorded(database_url: str, tmp_path: Path) -> AsyncIterator[Svc]:
    recorders: dict[str, Recorder] = {}

    def wrap(name, transport):
        if name != "entra":
            return transport
        recorders[name] = Recorder(transport)
        return recorders[name]

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, wrap_transport=wrap,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, "max_attempts": 4})
    try:
        yield Svc(svc, recorders["entra"])
    finally:
        await svc.close()


async def _people(s: Svc) -> tuple[str, str]:
    """A joiner in Engineering, and a leaver (account disabled, out of the groups)."""
    await s.svc.send([hire("j1", "J1", "Jo", "Iner", "Engineering"), hire("l1", "L1", "Lee", "Ver", "Sales")])
    await s.svc.drain()
    await s.svc.send(event("l2", "terminate", "L1"))
    await s.svc.drain()
    entra = EntraView(s.svc)
    return entra.remote_id("J1") or "", entra.remote_id("L1") or ""


def _entra_lines(report: ReconcileReport) -> set[tuple]:
    return {(d.group, d.kind, d.employee_id, d.login) for d in report.drift if d.target == "entra"}


def _delta_tokens(s: Svc, resource: str) -> list[str]:
    return [q.get("$deltatoken", [""])[0] for q in s.graph.paths(f"/{resource}/delta")]


async def test_changes_behind_the_back_are_found_reading_only_the_changes(recorded: Svc) -> None:
    s = recorded
    joiner, leaver = await _people(s)
    first = await s.reconcile()
    assert first.drift == [] and first.exit_code == 0
    assert s.graph.member_listings() >= 1  # no cursor yet: the groups were listed whole
    assert _delta_tokens(s, "groups") == ["latest"]  # tracking started before listing
    assert _delta_tokens(s, "users")[:1] == [""]  # every account, the first round

    stranger = s.svc.sandbox.seed_user("stranger@example.com", display_name="Stranger")
    s.svc.sandbox.add_member_directly(s.svc.group_ids["Finance"], stranger)
    s.svc.sandbox.add_member_directly(s.svc.group_ids["Finance"], joiner)
    s.svc.sandbox.remove_member_directly(s.svc.group_ids["Engineering"], joiner)
    await s.enable_directly(leaver)

    found = await s.reconcile()
    expected = {("Finance", "unknown_member", None, "stranger@example.com"),
                ("Finance", "member_added_elsewhere", "J1", "jo.iner@example.com"),
                ("Engineering", "member_removed_elsewhere", "J1", "jo.iner@example.com"),
                (None, "account_enabled_elsewhere", "L1", "lee.ver@example.com")}
    assert _entra_lines(found) == expected
    assert found.incidents == 1 and found.exit_code == 1  # the leaver's access came back
    assert s.graph.member_listings() == 0  # only changes were read
    for resource in ("groups", "users"):
        tokens = _delta_tokens(s, resource)
        assert tokens and all(t and t != "latest" for t in tokens), (resource, s.graph.urls)

    again = await s.reconcile()  # nothing changed since: what is still there is reported again
    assert _entra_lines(again) == expected and again.incidents == 0
    assert s.graph.member_listings() == 0

    await s.reconcile(fix=True)
    await s.svc.drain()
    clean = await s.reconcile()  # the service's own corrections came back as changes
    assert clean.drift == [] and clean.exit_code == 0, clean.drift
    assert s.graph.member_listings() == 0
    assert EntraView(s.svc).groups("J1") == {"All Staff", "Employees", "Engineering", "GitHub Users"}
    assert EntraView(s.svc).user("L1")["accountEnabled"] is False

    full = await s.reconcile(full=True)  # `provisioner reconcile --full`: listed whole, same answer
    assert full.drift == [] and s.graph.member_listings() >= 1
    assert _delta_tokens(s, "users")[:1] == [""]


async def test_an_expired_delta_link_is_answered_with_a_full_read_that_finds_the_drift(
        recorded: Svc, caplog: pytest.LogCaptureFixture) -> None:
    s = recorded
    joiner, _ = await _people(s)
    assert (await s.reconcile()).drift == []
    s.svc.sandbox.add_member_directly(s.svc.group_ids["Finance"], joiner)
    clock.advance(timedelta(days=8))  # Graph keeps delta tokens of directory objects for 7 days
    with caplog.at_level(logging.WARNING, logger="provisioner.reconcile.changes"):
        found = await s.reconcile()
    assert _entra_lines(found) == {("Finance", "member_added_elsewhere", "J1", "jo.iner@example.com")}
    assert found.errors == [] and found.exit_code == 1
    resyncs = [r for r in caplog.records if getattr(r, "alert", None) == "reconcile_resync"]
    assert {r.getMessage().split(" delta link")[0] for r in resyncs} == {
        "reconcile: entra: the groups", "reconcile: entra: the accounts"}
    assert s.graph.member_listings() >= 1  # read whole again
    assert "latest" in _delta_tokens(s, "groups")
    with s.svc.db.read() as session:  # new links saved: the next run reads changes again
        assert {c.resource for c in session.scalars(select(ReconcileCursor))} == {"groups", "users"}
    again = await s.reconcile()
    assert _entra_lines(again) == _entra_lines(found) and s.graph.member_listings() == 0


async def test_the_scheduled_run_is_skipped_while_another_holds_the_lock_or_ran_recently(
        recorded: Svc, caplog: pytest.LogCaptureFixture) -> None:
    s, rt = recorded, recorded.svc.runtime
    held = s.svc.db.named_lock(LOCK)  # another process reconciling
    assert held.acquire(1)
    with caplog.at_level(logging.INFO, logger="provisioner.reconcile.schedule"):
        try:
            assert await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, rt.settings) is None
        finally:
            held.release()
        assert "another process is reconciling" in caplog.text
        assert await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, rt.settings) is not None
        assert await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, rt.settings) is None  # ran just now
        assert "less than 54.0 min ago" in caplog.text
        clock.advance(timedelta(minutes=55))
        assert await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, rt.settings) is not None
    with s.svc.db.read() as session:
        assert len(session.scalars(select(AuditRecord).where(AuditRecord.kind == "reconcile.run")).all()) == 2


JOB = """
import asyncio, sys, time
from pathlib import Path
from provisioner.reconcile.schedule import scheduled_reconcile
from provisioner.runtime import Runtime
from provisioner.settings import get_settings

async def main():
    rt = Runtime.load(get_settings())
    print("ready", flush=True)
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.01)
    try:
        report = await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, rt.settings)
        print("skipped" if report is None else f"ran {len(report.drift)}", flush=True)
    finally:
        await rt.aclose()

asyncio.run(main())
"""


async def test_two_processes_run_one_scheduled_reconcile(service: SandboxedService, cli_over_sockets,  # noqa: F811
                                                         tmp_path: Path) -> None:
    await service.send(hire("p1", "P1", "Pro", "Cess", "Engineering"))
    await service.drain()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", JOB, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()  # both at once
        outs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    results = sorted(out.strip() for out, _ in outs)
    assert results == ["ran 0", "skipped"], outs
    with service.db.read() as session:
        runs = session.scalars(select(AuditRecord).where(AuditRecord.kind == "reconcile.run")).all()
    assert len(runs) == 1
