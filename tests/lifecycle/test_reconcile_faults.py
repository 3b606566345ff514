"""Reconciliation under injected faults: Graph's (the sandbox's ``fail_next`` and
``throttle_storm``) and a SCIM app's (``provisioner.sandbox.scim.faults``). A read that fails
once is retried with the queue's back-off (a Retry-After honoured) and the run is clean; a
group that keeps failing is reported (exit 2) while the other groups and targets are still
reconciled, and fixed; the command never ends in a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.demo.harness import SandboxedService
from provisioner.reconcile.service import ReadRetry, ReconcileReport, reconcile
from provisioner.sandbox.scim.faults import FaultTransport
from tests.lifecycle.test_reconcile_drift import (  # noqa: F401 (cli_over_sockets is a fixture)
    GROUP,
    add_to_group,
    cli_over_sockets,
    hand_made_account,
    hand_made_member,
    leaver_without_account,
    members,
    provisioner,
)
from tests.support import EntraView, hire


def fast_retry() -> ReadRetry:
    return ReadRetry(attempts=3, base=0.01, cap=0.05)


@dataclass
class Faulty:
    svc: SandboxedService
    wiki: FaultTransport  # between the service and the wiki's scim2-server

    async def run(self, *, fix: bool = False, retry: ReadRetry | None = None) -> ReconcileReport:
        rt = self.svc.runtime
        return await reconcile(rt.db, rt.ctx, rt.connectors, fix=fix, retry=retry or fast_retry())

    async def wiki_group_id(self, name: str) -> str:
        return (await self.svc.scim["wiki"].group(name))["id"]


@pytest.fixture
async def faulty(database_url: str, tmp_path: Path) -> AsyncIterator[Faulty]:
    wrapped: dict[str, FaultTransport] = {}

    def wrap(name, transport):
        if name != "wiki":
            return transport
        wrapped[name] = FaultTransport(transport)
        return wrapped[name]

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, wrap_transport=wrap,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, "max_attempts": 4})
    try:
        yield Faulty(svc, wrapped["wiki"])
    finally:
        await svc.close()


def graph_504(svc: SandboxedService, path: str, times: int = 1) -> None:
    svc.sandbox.fail_next("GET", path, status=504, code="GatewayTimeout", message="injected 504", times=times)


# (target, read, what the setup needs)
ONE_FAULT = [
    ("entra", "group members", "hire"),
    ("entra", "read_accounts", "hire"),
    ("entra", "resolve", "fresh"),
    ("entra", "describe", "drift"),
    ("entra", "find_accounts", "leaver"),
    ("wiki", "group members", "hire"),
    ("wiki", "read_accounts", "hire"),
    ("wiki", "resolve", "fresh"),
    ("wiki", "find_accounts", "leaver"),
]


@pytest.mark.parametrize(("target", "read", "setup"), ONE_FAULT, ids=[f"{t}-{r}" for t, r, _ in ONE_FAULT])
async def test_one_failed_read_is_retried_and_the_run_is_clean(faulty: Faulty, target: str, read: str,
                                                                setup: str) -> None:
    svc = faulty.svc
    if setup in ("hire", "drift"):
        await svc.send(hire("h1", "H1", "Harry", "Ready", "Engineering"))
        await svc.drain()
    if setup == "leaver":
        await leaver_without_account(svc, "L1")
    if setup == "drift":  # a membership removed behind the service's back: a line to describe
        rid = EntraView(svc).remote_id("H1")
        svc.sandbox.remove_member_directly(svc.group_ids["Engineering"], rid)
    if target == "entra":
        graph_504(svc, {"group members": r"^/groups/[^/]+/members$", "read_accounts": r"^/users/[^/]+$",
                        "resolve": r"^/groups$", "describe": r"^/users$", "find_accounts": r"^/users$"}[read])
    else:
        kind, path = {"group members": ("503", "/Groups/"), "read_accounts": ("500", "/Users/"),
                      "resolve": ("429", "/Groups"), "find_accounts": ("drop_before", "/Users")}[read]
        faulty.wiki.script(kind, method="GET", path=path)
    report = await faulty.run()
    assert report.errors == []
    assert report.read_retries == 1  # the fault was met, once, and the read tried again
    if setup == "drift":
        [line] = report.drift
        assert (line.kind, line.group, line.login) == ("member_removed_elsewhere", "Engineering",
                                                       "harry.ready@example.com")
        assert report.exit_code == 1
    else:
        assert report.drift == [] and report.exit_code == 0
    if target == "wiki":
        assert sum(faulty.wiki.injected.values()) == 1


async def test_a_throttle_storm_is_waited_out_as_retry_after_says(faulty: Faulty) -> None:
    svc = faulty.svc
    await svc.send(hire("t1", "T1", "Theo", "Rottle", "Engineering"))
    await svc.drain()
    svc.sandbox.throttle_storm(4, retry_after=1)
    started = time.monotonic()
    report = await faulty.run()  # base 0.01 s: only Retry-After makes it wait a second
    assert time.monotonic() - started >= 1.0
    assert report.errors == [] and report.drift == [] and report.exit_code == 0
    assert report.read_retries >= 1


async def test_a_group_that_keeps_failing_is_reported_and_everything_else_reconciled(faulty: Faulty) -> None:
    svc = faulty.svc
    await svc.send(hire("p1", "P1", "Pat", "Sistent", "Engineering"))
    await svc.drain()
    strangers = {t: await hand_made_member(svc, t) for t in ("entra", "wiki")}  # in Finance / Wiki Editors
    graph_504(svc, rf"^/groups/{svc.group_ids['Engineering']}/members$", times=1000)
    readers = await faulty.wiki_group_id("Wiki Readers")
    faulty.wiki.script("500", times=1000, method="GET", path=f"/Groups/{readers}")

    report = await faulty.run(fix=True)
    assert sorted(report.errors) == [
        "entra: cannot read the members of managed group 'Engineering': 504 GatewayTimeout: injected 504",
        "wiki: cannot read the members of managed group 'Wiki Readers': HTTP 500: injected server error"]
    assert report.exit_code == 2
    lines = {(d.target, d.group, d.kind, d.login) for d in report.drift}
    assert lines == {("entra", "Finance", "unknown_member", "hand.made@example.com"),
                     ("wiki", "Wiki Editors", "unknown_member", "hand.made@example.com")}
    assert report.removed == 2  # the other groups were fixed
    assert strangers["entra"] not in await members(svc, "entra", GROUP["entra"])
    assert strangers["wiki"] not in await members(svc, "wiki", GROUP["wiki"])
    assert report.read_retries == 2 * 2  # each failing group: attempts 3, so 2 retries each


async def test_groups_whose_names_cannot_be_resolved_are_reported_and_the_resolved_ones_reconciled(
        faulty: Faulty) -> None:
    svc = faulty.svc
    await svc.send(hire("r1", "R1", "Reso", "Lute", "Engineering"))  # the worker resolves the groups it grants
    await svc.drain()
    stranger = await hand_made_account(svc, "entra", "stray@example.com", "Stray")
    await add_to_group(svc, "entra", "Engineering", stranger)
    graph_504(svc, r"^/groups$", times=1000)  # looking groups up by name keeps failing
    report = await faulty.run()
    [error] = report.errors
    assert error.startswith("entra: cannot resolve managed group(s) ") and "'Finance'" in error
    assert "'Engineering'" not in error
    assert [(d.target, d.group, d.kind, d.login) for d in report.drift] == [
        ("entra", "Engineering", "unknown_member", "stray@example.com")]
    assert report.exit_code == 2


async def test_a_target_that_cannot_be_read_at_all_leaves_the_others_reconciled(faulty: Faulty) -> None:
    svc = faulty.svc
    await svc.send(hire("w1", "W1", "Wes", "Kee", "Engineering"))
    await svc.drain()
    stranger = await hand_made_member(svc, "entra")
    faulty.wiki.script("503", times=10_000, method="GET")
    report = await faulty.run(fix=True)
    assert [e.split(":", 2)[:2] for e in report.errors] == [["wiki", " cannot read the target"]]
    assert [(d.target, d.kind) for d in report.drift] == [("entra", "unknown_member")]
    assert report.removed == 1 and stranger not in await members(svc, "entra", GROUP["entra"])
    assert report.exit_code == 2


async def test_the_command_retries_and_reports_without_a_traceback(service, cli_over_sockets, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("PROVISIONER_BACKOFF_BASE_SECONDS", "0.01")
    monkeypatch.setenv("PROVISIONER_BACKOFF_MAX_SECONDS", "0.05")
    monkeypatch.setenv("PROVISIONER_RECONCILE_READ_ATTEMPTS", "3")
    await service.send(hire("c1", "C1", "Cli", "Ent", "Engineering"))
    await service.drain()

    graph_504(service, r"^/groups/[^/]+/members$")  # one 504, then Graph answers
    once = await provisioner("reconcile", "--json")
    assert once.exit_code == 0, once.output
    assert json.loads(once.output)["read_retries"] == 1

    graph_504(service, rf"^/groups/{service.group_ids['Engineering']}/members$", times=1000)
    await hand_made_member(service, "wiki")
    kept = await provisioner("reconcile", "--full")  # the group is listed again (not read through its changes)
    assert kept.exit_code == 2, kept.output
    assert "entra: cannot read the members of managed group 'Engineering': 504 GatewayTimeout" in kept.output
    assert "hand.made@example.com" in kept.output  # the wiki was reconciled all the same
    assert "Traceback" not in kept.output
    assert kept.exception is None or isinstance(kept.exception, SystemExit)
