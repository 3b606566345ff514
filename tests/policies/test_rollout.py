"""Policy rollouts: a changed policy set reaches the people already provisioned, on restart and on
reload, without any HR event; read back from the Graph sandbox. `policy diff` previews the same
change per group and changes nothing; an unchanged set re-plans nobody."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from provisioner.audit.models import AuditRecord
from provisioner.cli.main import app
from provisioner.db import Database
from provisioner.demo.harness import REPO, SandboxedService
from provisioner.planner.models import Plan
from provisioner.planner.service import PlanningContext
from provisioner.policies.loader import load_policies
from provisioner.queue.models import Operation
from provisioner.rollouts.fingerprint import fingerprint
from provisioner.rollouts.models import PolicyRollout, RolloutStatus
from provisioner.rollouts.service import policy_drift
from provisioner.runtime import Runtime
from provisioner.settings import get_settings
from tests.support import EntraView, hire

ENGINEER = {"All Staff", "Employees", "Engineering", "GitHub Users"}
SELLER = {"All Staff", "Employees", "Sales", "Salesforce Users"}


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """An editable copy of the shipped policies."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "policies", folder)
    return folder


@pytest.fixture
async def svc(database_url: str, tmp_path: Path, policies: Path) -> AsyncIterator[SandboxedService]:
    service = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, policies_dir=policies,
                               settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                         "max_attempts": 4})
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def entra(svc: SandboxedService) -> EntraView:
    return EntraView(svc)


async def provision(svc: SandboxedService) -> None:
    """Four people: an engineer in Berlin, a seller, a support engineer in Sales by job code, and
    someone in Finance."""
    await svc.send([hire("h1", "E1", "Ada", "Lovelace", "Engineering", location="DE-BER-1"),
                    hire("h2", "S1", "Alan", "Turing", "Sales"),
                    hire("h3", "S2", "Grace", "Hopper", "Support", job_code="SE1"),
                    hire("h4", "F1", "Kat", "Johnson", "Finance")])
    await svc.drain()


def edit_policies(folder: Path) -> None:
    """Add a group to one policy, remove a rule from another, delete a third."""
    finance = folder / "finance.yaml"
    finance.write_text(finance.read_text().replace("groups: [Finance]", "groups: [Finance, Salesforce Users]"))
    (folder / "sales.yaml").write_text(
        "name: sales\ndescription: Sales gets the CRM.\nwhen:\n  any:\n"
        "    - {attribute: department, equals: Sales}\n"
        "grants:\n  entra:\n    groups: [Sales, Salesforce Users]\n")
    (folder / "berlin.yaml").unlink()


def assert_before(entra: EntraView) -> None:
    assert entra.groups("E1") == ENGINEER | {"Berlin Office"}
    assert entra.groups("S1") == SELLER
    assert entra.groups("S2") == SELLER
    assert entra.groups("F1") == {"All Staff", "Employees", "Finance"}


def assert_after(entra: EntraView) -> None:
    assert entra.groups("E1") == ENGINEER  # Berlin Office: its policy was deleted
    assert entra.groups("S1") == SELLER  # untouched
    assert entra.groups("S2") == {"All Staff", "Employees"}  # the job-code rule is gone
    assert entra.groups("F1") == {"All Staff", "Employees", "Finance", "Salesforce Users"}


def count(db: Database, model, *where) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def rollout_records(db: Database) -> list[AuditRecord]:
    with db.read() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.kind == "policy.rollout")
                                    .order_by(AuditRecord.seq)))


def restarted(svc: SandboxedService) -> Runtime:
    """A new process's runtime on the same database, policies, targets and sandbox."""
    return Runtime.load(svc.settings, db=Database(svc.settings.database_url), transports=svc.transports)


def context(folder: Path, svc: SandboxedService) -> PlanningContext:
    targets = svc.runtime.ctx.targets
    return PlanningContext(policies=load_policies(folder, targets), targets=targets)


async def test_restart_rolls_a_changed_policy_set_out_without_any_hr_event(svc, entra, policies):
    await provision(svc)
    assert_before(entra)
    first = svc.rollout.fingerprint
    ops_before = count(svc.db, Operation)
    edit_policies(policies)
    rt = restarted(svc)
    try:
        result = await rt.start()
        assert result.outcome == "applied" and result.previous_fingerprint == first
        assert result.fingerprint == fingerprint(rt.ctx.policies, rt.ctx.targets) != first
        assert result.replanned == 3
        await rt.drain()
        assert_after(entra)
        assert count(svc.db, Operation) - ops_before == 4  # 1 add + 3 removes, nothing else
        with svc.db.read() as session:
            assert policy_drift(session, rt.ctx) == []
        [record] = rollout_records(svc.db)
        assert record.subject == result.fingerprint
        data = record.data
        assert (data["fingerprint"], data["previous_fingerprint"], data["status"], data["trigger"]) == (
            result.fingerprint, first, "applied", "start")
        assert {k: data["counts"][k] for k in ("population", "people", "gains", "losses")} == {
            "population": 4, "people": 3, "gains": 1, "losses": 3}
        assert data["counts"]["targets"]["entra"]["groups"] == {
            "Berlin Office": {"gain": 0, "lose": 1}, "Sales": {"gain": 0, "lose": 1},
            "Salesforce Users": {"gain": 1, "lose": 1}}
        assert "finance.yaml" in data["files"] and "berlin.yaml" not in data["files"]
        with svc.db.read() as session:
            rows = session.scalars(select(PolicyRollout).order_by(PolicyRollout.id)).all()
        assert [(r.fingerprint, r.status) for r in rows] == [(first, RolloutStatus.APPLIED),
                                                             (result.fingerprint, RolloutStatus.APPLIED)]
        assert rows[1].diff["entra"]["Salesforce Users"]["gain"] == [{"employee_id": "F1", "display_name": "Kat Johnson"}]
        assert rows[1].diff["entra"]["Salesforce Users"]["lose"] == [{"employee_id": "S2", "display_name": "Grace Hopper"}]
        plans = count(svc.db, Plan)
    finally:
        await rt.aclose()
    # Another restart with the same policy set re-plans nobody and records nothing.
    again = restarted(svc)
    try:
        result = await again.start()
        assert result.outcome == "unchanged" and result.replanned == 0
        await again.drain()
    finally:
        await again.aclose()
    assert count(svc.db, Plan) == plans
    assert len(rollout_records(svc.db)) == 1
    assert count(svc.db, PolicyRollout) == 2
    assert_after(entra)


async def test_reload_puts_the_files_into_the_running_service_and_rolls_them_out(svc, entra, policies):
    await provision(svc)
    edit_policies(policies)
    result = await svc.runtime.reload_policies("sighup")
    assert result.outcome == "applied" and result.replanned == 3
    assert svc.runtime.ctx.policies == load_policies(policies, svc.runtime.ctx.targets)  # the running context
    await svc.drain()
    assert_after(entra)
    # A newcomer is planned with the reloaded policies too.
    await svc.send(hire("h5", "S3", "Sup", "Port", "Support", job_code="SE1"))
    await svc.drain()
    assert entra.groups("S3") == {"All Staff", "Employees"}
    # A reload of the same files changes nothing; a broken file keeps the running set.
    plans = count(svc.db, Plan)
    assert (await svc.runtime.reload_policies("sighup")).outcome == "unchanged"
    (policies / "broken.yaml").write_text("name: broken\ngrants:\n  entra: {groups: [Sales]}\n")
    running = svc.runtime.ctx.policies
    assert await svc.runtime.reload_policies("sighup") is None
    assert svc.runtime.ctx.policies is running
    assert count(svc.db, Plan) == plans


async def test_processes_starting_together_roll_out_once(svc, policies):
    await provision(svc)
    edit_policies(policies)
    runtimes = [restarted(svc) for _ in range(3)]
    try:
        results = await asyncio.gather(*(rt.start() for rt in runtimes))
    finally:
        for rt in runtimes:
            await rt.aclose()
    assert sorted(r.outcome for r in results) == ["applied", "unchanged", "unchanged"]
    assert count(svc.db, Plan, Plan.trigger.like("policy:%")) == 3
    assert len(rollout_records(svc.db)) == 1


async def test_policy_drift_lists_known_against_desired(svc, entra, policies):
    await provision(svc)
    with svc.db.read() as session:
        assert policy_drift(session, svc.runtime.ctx) == []
    edit_policies(policies)
    with svc.db.read() as session:
        drift = policy_drift(session, context(policies, svc))
    assert sorted((d.employee_id, d.display_name, d.target, d.group, d.change) for d in drift) == [
        ("E1", "Ada Lovelace", "entra", "Berlin Office", "lose"),
        ("F1", "Kat Johnson", "entra", "Salesforce Users", "gain"),
        ("S2", "Grace Hopper", "entra", "Sales", "lose"),
        ("S2", "Grace Hopper", "entra", "Salesforce Users", "lose"),
    ]


async def test_a_rollout_above_the_limit_waits_for_approval_and_changes_nobody(svc, entra, policies):
    await provision(svc)
    edit_policies(policies)
    limited = svc.settings.model_copy(update={"policy_rollout_max_auto": 2})
    plans = count(svc.db, Plan)
    for _ in range(2):  # held once, and still held (not recorded again) at the next start
        rt = Runtime.load(limited, db=Database(limited.database_url), transports=svc.transports)
        try:
            result = await rt.start()
            await rt.drain()
        finally:
            await rt.aclose()
        assert (result.outcome, result.replanned, result.counts["people"]) == ("held", 0, 3)
    assert count(svc.db, Plan) == plans
    assert_before(entra)
    [record] = rollout_records(svc.db)
    assert record.data["status"] == RolloutStatus.AWAITING_APPROVAL and record.data["counts"]["people"] == 3
    # The limit raised (to the default, 50): the same set applies at the next start, and its held row says so.
    rt = restarted(svc)
    try:
        result = await rt.start()
        await rt.drain()
    finally:
        await rt.aclose()
    assert (result.outcome, result.replanned) == ("applied", 3)
    assert_after(entra)
    with svc.db.read() as session:
        rows = session.scalars(select(PolicyRollout).order_by(PolicyRollout.id)).all()
    assert [r.status for r in rows] == [RolloutStatus.APPLIED, RolloutStatus.APPLIED]
    assert rows[1].id == result.rollout_id and rows[1].decided_by == "policy_rollout_max_auto=50"
    assert [(r.data["status"], r.data["decided_by"]) for r in rollout_records(svc.db)] == [
        (RolloutStatus.AWAITING_APPROVAL, None), (RolloutStatus.APPLIED, "policy_rollout_max_auto=50")]


@pytest.fixture
def cli(svc: SandboxedService, monkeypatch):
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(svc.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(svc.settings.targets_dir))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def state(db: Database) -> tuple[int, ...]:
    return tuple(count(db, model) for model in (Plan, Operation, AuditRecord, PolicyRollout))


async def test_policy_diff_previews_per_group_and_changes_nothing(svc, entra, cli, tmp_path):
    await provision(svc)
    proposed = tmp_path / "proposed"
    shutil.copytree(svc.settings.policies_dir, proposed)
    edit_policies(proposed)
    before = state(svc.db)
    result = cli("policy", "diff", str(proposed))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "3 of 4 people affected: 1 membership(s) gained, 3 lost" in result.output
    rows = {tuple(cell.strip() for cell in line.split("│")[1:5]) for line in lines if "│" in line}
    assert {("entra", "Berlin Office", "0", "1"), ("entra", "Sales", "0", "1"),
            ("entra", "Salesforce Users", "1", "1")} <= rows
    assert any("Salesforce Users" in line and "F1" in line and "S2" in line for line in lines)
    result = cli("policy", "diff", str(proposed), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["fingerprint"] != body["applied_fingerprint"] == svc.rollout.fingerprint
    assert body["counts"]["people"] == 3 and body["counts"]["population"] == 4
    assert body["groups"] == {"entra": {
        "Berlin Office": {"gain_count": 0, "lose_count": 1, "gain": [],
                          "lose": [{"employee_id": "E1", "display_name": "Ada Lovelace"}]},
        "Sales": {"gain_count": 0, "lose_count": 1, "gain": [],
                  "lose": [{"employee_id": "S2", "display_name": "Grace Hopper"}]},
        "Salesforce Users": {"gain_count": 1, "lose_count": 1,
                             "gain": [{"employee_id": "F1", "display_name": "Kat Johnson"}],
                             "lose": [{"employee_id": "S2", "display_name": "Grace Hopper"}]}}}
    # The configured (applied) folder: nothing to do.
    result = cli("policy", "diff")
    assert result.exit_code == 0 and "0 of 4 people affected" in result.output and "(the same set)" in result.output
    assert state(svc.db) == before
    await svc.drain()
    assert_before(entra)


async def test_policy_reload_command_rolls_out_and_workers_carry_it_out(svc, entra, cli, policies):
    await provision(svc)
    edit_policies(policies)
    result = cli("policy", "reload")
    assert result.exit_code == 0, result.output
    assert "3 of 4 people re-planned, 1 membership(s) to gain, 3 to lose" in result.output
    await svc.drain()  # the running service's workers
    assert_after(entra)
    assert "already applied: nobody re-planned" in cli("policy", "reload").output
    listing = cli("policy", "rollouts").output
    assert listing.count("applied") >= 2 and "reload" in listing
    assert "0 of 4 people affected" in cli("policy", "diff").output


def test_fingerprint_ignores_layout_and_follows_content(tmp_path, policies):
    from provisioner.targets.config import load_targets

    targets = load_targets(REPO / "targets")
    base = fingerprint(load_policies(policies, targets), targets)
    # File names, comments, whitespace, key order, group order and descriptions do not count.
    relaid = tmp_path / "relaid"
    relaid.mkdir()
    for n, path in enumerate(sorted(policies.glob("*.yaml"))):
        text = path.read_text().replace("description:", "# a comment\ndescription:")
        (relaid / f"{n:02d}-{path.stem}.yml").write_text("\n\n" + text)
    (relaid / "06-managers.yml").write_text(
        "grants:\n  entra:\n    groups: [ Managers ]\nwhen:\n  any:\n"
        "    - {attribute: title, prefix: 'Head of'}\n    - {attribute: job_code, one_of: [DIR1, MGR2, MGR1]}\n"
        "name: managers\ndescription: reworded\n")
    eng = relaid / "04-engineering.yml"
    eng.write_text(eng.read_text().replace("[Engineering, GitHub Users]", "[GitHub Users, Engineering]"))
    assert fingerprint(load_policies(relaid, targets), targets) == base
    # A granted group, a state or a managed group does.
    eng.write_text(eng.read_text().replace("[GitHub Users, Engineering]", "[GitHub Users]"))
    assert fingerprint(load_policies(relaid, targets), targets) != base
    fewer = {**targets, "wiki": targets["wiki"].model_copy(update={"managed_groups": targets["wiki"].managed_groups[:1]})}
    assert fingerprint(load_policies(policies, targets), fewer) != base


# -- `provisioner serve` as a process: SIGHUP --------------------------------------------------------
def test_sighup_makes_a_running_serve_roll_out_edited_policy_files(database_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import httpx
    import yaml

    from provisioner.intake.signing import signed_headers
    from provisioner.migrations import upgrade
    from provisioner.sandbox.ports import free_port
    from tests.cli.test_serve_processes import wait_for

    graph_port, api_port = free_port(), free_port()
    targets, folder = tmp_path / "targets", tmp_path / "policies"
    targets.mkdir()
    folder.mkdir()
    data = yaml.safe_load((REPO / "targets" / "entra.yaml").read_text())
    data["graph_url"] = f"http://127.0.0.1:{graph_port}/v1.0"
    (targets / "entra.yaml").write_text(yaml.safe_dump(data))
    (folder / "everyone.yaml").write_text("name: everyone\nbirthright: true\ngrants:\n  entra: {groups: [All Staff]}\n")
    (folder / "eng.yaml").write_text("name: eng\nwhen: {attribute: department, equals: Engineering}\n"
                                     "grants:\n  entra: {groups: [Engineering]}\n")
    env = {**os.environ, "PROVISIONER_DATABASE_URL": database_url, "PROVISIONER_TARGETS_DIR": str(targets),
           "PROVISIONER_POLICIES_DIR": str(folder), "PROVISIONER_SANDBOX_TOKEN": "sandbox-token",
           "PROVISIONER_HR_SECRETS": json.dumps({"workday": "hr-secret"}), "PROVISIONER_LOG_LEVEL": "WARNING",
           "PROVISIONER_WORKER_POLL_SECONDS": "0.2", "PROVISIONER_DUE_EVENTS_SECONDS": "0.2"}
    upgrade(database_url)
    procs = [subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
             for args in (["sandbox", "graph", "--port", str(graph_port), "--no-throttle"],
                          ["serve", "--port", str(api_port)])]
    serve = procs[1]
    graph = httpx.Client(base_url=f"http://127.0.0.1:{graph_port}/v1.0", headers={"Authorization": "Bearer sandbox-token"})
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}")

    def groups(employee_id: str) -> set[str] | None:
        found = graph.get("/users", params={"$filter": f"employeeId eq '{employee_id}'"}).json()["value"]
        if not found:
            return None
        return {g["displayName"] for g in graph.get(f"/users/{found[0]['id']}/memberOf").json()["value"]}

    try:
        wait_for(lambda: api.get("/healthz").status_code == 200, 120, what="the API")
        body = json.dumps({"events": [hire("p1", "E1", "Ada", "Lovelace", "Engineering"),
                                      hire("p2", "S1", "Alan", "Turing", "Sales")]}).encode()
        assert api.post("/hr/events", content=body,
                        headers=signed_headers("workday", "hr-secret", body)).status_code == 202
        wait_for(lambda: groups("E1") == {"All Staff", "Engineering"} and groups("S1") == {"All Staff"},
                 120, what="the joiners' groups")
        # Add a group, add a policy, remove one; then SIGHUP, and no HR event.
        (folder / "eng.yaml").write_text((folder / "eng.yaml").read_text().replace("[Engineering]",
                                                                                   "[Engineering, GitHub Users]"))
        (folder / "sales.yaml").write_text("name: sales\nwhen: {attribute: department, equals: Sales}\n"
                                           "grants:\n  entra: {groups: [Sales]}\n")
        (folder / "everyone.yaml").unlink()
        os.kill(serve.pid, signal.SIGHUP)
        wait_for(lambda: groups("E1") == {"Engineering", "GitHub Users"} and groups("S1") == {"Sales"},
                 120, what="the edited policies in Entra")
        db = Database(database_url)
        try:
            [record] = rollout_records(db)
            assert record.data["trigger"] == "sighup", record.data
            assert record.data["counts"]["people"] == 2
            assert (record.data["counts"]["gains"], record.data["counts"]["losses"]) == (2, 2), record.data
        finally:
            db.dispose()
        assert all(proc.poll() is None for proc in procs), "a process died"
    finally:
        graph.close()
        api.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_policy_reload_wait_follows_the_rollout_to_the_end(svc, entra, cli, policies):
    """``--wait``: progress of the rollout's operations while the service carries them out, then
    a summary; when it returns the change is already in Graph."""
    import asyncio

    await provision(svc)
    edit_policies(policies)
    waiting = asyncio.ensure_future(asyncio.to_thread(cli, "policy", "reload", "--wait"))
    while not waiting.done():
        await svc.drain(max_wait=5)
        await asyncio.sleep(0.1)
    result = await waiting
    assert result.exit_code == 0, result.output
    assert "entra operations" in result.output  # the bar
    done = next(line for line in result.output.splitlines() if line.startswith("done:"))
    assert "entra: " in done and " dead" not in done, done
    assert_after(entra)
