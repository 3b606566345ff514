"""Reconciliation of what others did in Entra ID (the Graph sandbox) and in a SCIM app (the
wiki's scim2-server): unknown members of managed groups named and removed, leavers' orphan
accounts reported, revocation incidents for leavers whose access came back, and the exit
codes of `provisioner reconcile`."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from provisioner.audit.models import AuditRecord
from provisioner.cli.main import app
from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.evidence.models import RevocationIncident
from provisioner.planner.service import PlanningContext
from provisioner.policies.loader import load_policies
from provisioner.reconcile.fix import VERIFIED
from provisioner.reconcile.service import reconcile
from provisioner.rollouts.service import roll_out
from provisioner.sandbox.ports import free_port
from provisioner.sandbox.scim.app import serve_in_thread
from provisioner.settings import get_settings
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import WikiView

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = {"entra": "Finance", "wiki": "Wiki Editors"}
TARGETS = ["entra", "wiki"]


async def hand_made_account(svc: SandboxedService, target: str, login: str, display_name: str,
                            employee_id: str | None = None) -> str:
    """An account someone created in the target by hand."""
    if target == "entra":
        return svc.sandbox.seed_user(login, display_name=display_name, employee_id=employee_id)
    body = {"schemas": [USER_SCHEMA], "userName": login, "displayName": display_name, "active": True}
    return (await svc.scim["wiki"].add("Users", {**body, **({"externalId": employee_id} if employee_id else {})}))["id"]


async def add_to_group(svc: SandboxedService, target: str, group: str, remote_id: str) -> None:
    """Someone adds an account to a managed group behind the service's back."""
    if target == "entra":
        svc.sandbox.add_member_directly(svc.group_ids[group], remote_id)
        return
    server = svc.scim["wiki"]
    found = await server.group(group)
    if found is None:  # the app has the group already, made by its admin
        await server.add("Groups", {"schemas": [GROUP_SCHEMA], "displayName": group, "members": [{"value": remote_id}]})
        return
    async with server.client() as client:
        reply = await client.patch(f"/Groups/{found['id']}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": remote_id}]}]})
        assert reply.status_code in (200, 204), reply.text


async def members(svc: SandboxedService, target: str, group: str) -> set[str]:
    """The group's members, read from the target itself."""
    if target == "entra":
        return svc.sandbox.group_member_ids(svc.group_ids[group])
    return await svc.scim["wiki"].group_members(group)


async def hand_made_member(svc: SandboxedService, target: str) -> str:
    remote_id = await hand_made_account(svc, target, "hand.made@example.com", "Hand Made")
    await add_to_group(svc, target, GROUP[target], remote_id)
    return remote_id


@pytest.mark.parametrize("target", TARGETS)
async def test_unknown_member_is_named_and_removed_by_fix(service, target):
    stranger = await hand_made_member(service, target)
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False)
    [line] = report.drift
    assert (line.target, line.group, line.kind, line.remote_id) == (target, GROUP[target], "unknown_member", stranger)
    assert (line.login, line.display_name) == ("hand.made@example.com", "Hand Made")
    assert report.exit_code == 1
    assert stranger in await members(service, target, GROUP[target])  # report only

    fixed = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    assert [d.action for d in fixed.drift] == [VERIFIED]
    assert (fixed.removed, fixed.errors) == (1, [])
    assert stranger not in await members(service, target, GROUP[target])
    with service.db.read() as session:
        [audit] = session.query(AuditRecord).filter(AuditRecord.kind == "reconcile.unknown_member_removed").all()
        assert audit.data["verified"] is True
        assert (audit.data["login"], audit.data["group"]) == ("hand.made@example.com", GROUP[target])
    clean = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False)
    assert (clean.drift, clean.exit_code) == ([], 0)


@pytest.fixture
async def reporting_service(database_url: str, tmp_path: Path):
    """The service with ``unknown_members: report`` in both target files."""
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           target_overrides={"unknown_members": "report"},
                           scim_overrides={"wiki": {"unknown_members": "report"}})
    try:
        yield svc
    finally:
        await svc.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_unknown_members_report_leaves_them_in_the_group(reporting_service, target):
    stranger = await hand_made_member(reporting_service, target)
    rt = reporting_service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    [line] = report.drift
    assert (line.kind, line.login, line.action) == ("unknown_member", "hand.made@example.com",
                                                    "reported only (unknown_members: report)")
    assert report.removed == 0
    assert stranger in await members(reporting_service, target, GROUP[target])


async def leaver_without_account(svc: SandboxedService, emp: str) -> None:
    """HR hires and terminates someone in one extract: the service never made them an account."""
    now = utcnow()
    await svc.send([hire(f"{emp}-h", emp, "Gone", "Person", "Sales", now - timedelta(hours=2)),
                    event(f"{emp}-t", "terminate", emp, now - timedelta(hours=1))])
    await svc.drain()


@pytest.mark.parametrize("target", TARGETS)
async def test_orphan_account_of_a_leaver_is_reported_by_name_and_left_alone(service, entra: EntraView, target):
    await leaver_without_account(service, "O1")
    assert entra.state("O1") == "terminated" and entra.remote_id("O1") is None
    orphan = await hand_made_account(service, target, "gone.person@example.com", "Gone Person", employee_id="O1")
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    [line] = report.drift
    assert (line.target, line.kind, line.employee_id, line.remote_id) == (target, "orphan_account", "O1", orphan)
    assert (line.login, line.display_name) == ("gone.person@example.com", "Gone Person")
    assert line.action.startswith("reported only")
    assert report.exit_code == 1
    if target == "entra":  # not the service's: still there, still enabled
        assert service.sandbox.user(orphan)["accountEnabled"] is True
    else:
        [account] = await WikiView(service).accounts("O1")
        assert account["id"] == orphan and account.get("active", True) is True


async def test_leaver_access_restored_elsewhere_opens_one_incident_per_finding(service, entra: EntraView):
    await service.send(hire("i1", "I1", "Ines", "Back", "Engineering"))
    await service.drain()
    await service.send(event("i2", "terminate", "I1"))
    await service.drain()
    rid = entra.remote_id("I1")
    wiki = WikiView(service)
    wiki_id = wiki.remote_id("I1")
    # Someone re-enables the leaver in Entra ID and in the wiki, and puts them back in a group.
    service.sandbox.add_member_directly(service.group_ids["GitHub Users"], rid)
    async with service.scim["wiki"].client() as client:
        reply = await client.patch(f"/Users/{wiki_id}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": True}]})
        assert reply.status_code in (200, 204), reply.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0",
                                 headers={"Authorization": f"Bearer {service.sandbox_token}"}) as graph:
        assert (await graph.patch(f"/users/{rid}", json={"accountEnabled": True})).status_code == 204
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False)
    found = {(d.target, d.kind, d.group, d.login) for d in report.drift}
    assert found == {("entra", "account_enabled_elsewhere", None, "ines.back@example.com"),
                     ("entra", "member_added_elsewhere", "GitHub Users", "ines.back@example.com"),
                     ("wiki", "account_enabled_elsewhere", None, "ines.back@example.com")}
    assert report.incidents == 3
    again = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)  # still open: no second incident
    assert again.incidents == 0
    await service.drain()
    with service.db.read() as session:
        rows = session.query(RevocationIncident).order_by(RevocationIncident.id).all()
        assert {(r.target, r.kind, r.detail["group"], r.detail["login"], r.detected_by) for r in rows} == {
            ("entra", "account_enabled_elsewhere", None, "ines.back@example.com", "reconcile"),
            ("entra", "member_added_elsewhere", "GitHub Users", "ines.back@example.com", "reconcile"),
            ("wiki", "account_enabled_elsewhere", None, "ines.back@example.com", "reconcile")}
        plans = {r.plan_id for r in rows}
        assert len(plans) == 1 and None not in plans  # the re-plan --fix made for the leaver
    assert entra.user("I1")["accountEnabled"] is False
    assert "GitHub Users" not in entra.groups("I1")
    assert (await wiki.user("I1"))["active"] is False


@pytest.fixture
def cli_over_sockets(service, tmp_path: Path, monkeypatch):
    """`provisioner reconcile` as an operator runs it: its own process state, reaching the
    service's Graph sandbox and wiki over loopback sockets, on the service's database."""
    servers = []
    folder = tmp_path / "cli-targets"
    folder.mkdir()
    for path in sorted(Path(service.settings.targets_dir).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        entra = data["kind"] == "entra"
        url, server = serve_in_thread(service.sandbox if entra else service.scim[data["name"]])
        servers.append(server)
        root = url.removesuffix("/v2")  # http://127.0.0.1:PORT
        data.update({"graph_url": f"{root}/v1.0"} if entra else {"base_url": f"{root}/v2"})
        (folder / path.name).write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()
    for server in servers:
        server.should_exit = True


async def provisioner(*args: str):
    """The command in a thread: it runs its own event loop, as it does from a shell."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_reconcile_command_exit_codes_table_and_json(service, cli_over_sockets):
    await service.send(hire("c1", "C1", "Clean", "Person", "Engineering"))
    await service.drain()
    clean = await provisioner("reconcile")
    assert clean.exit_code == 0, clean.output
    assert "drift: 0 item(s)" in clean.output

    entra_stranger = await hand_made_member(service, "entra")
    wiki_stranger = await hand_made_member(service, "wiki")
    found = await provisioner("reconcile", "--json")
    assert found.exit_code == 1, found.output
    lines = json.loads(found.output)["drift"]
    assert {(d["target"], d["group"], d["kind"], d["login"], d["display_name"], d["remote_id"]) for d in lines} == {
        ("entra", "Finance", "unknown_member", "hand.made@example.com", "Hand Made", entra_stranger),
        ("wiki", "Wiki Editors", "unknown_member", "hand.made@example.com", "Hand Made", wiki_stranger)}

    fixed = await provisioner("reconcile", "--fix")
    assert fixed.exit_code == 1, fixed.output  # it found drift (and fixed it)
    assert fixed.output.count("Hand Made <hand.made@example.com>") == 2
    assert "2 unknown member(s) removed and verified" in fixed.output
    assert entra_stranger not in await members(service, "entra", "Finance")
    assert wiki_stranger not in await members(service, "wiki", "Wiki Editors")
    after = await provisioner("reconcile")
    assert after.exit_code == 0, after.output


async def test_reconcile_command_exits_2_when_a_target_cannot_be_reached(service, cli_over_sockets):
    wiki = cli_over_sockets / "wiki.yaml"
    data = yaml.safe_load(wiki.read_text())
    data["base_url"] = f"http://127.0.0.1:{free_port()}/v2"  # nothing listens there
    data["timeout_seconds"] = 2
    wiki.write_text(yaml.safe_dump(data))
    result = await provisioner("reconcile")
    assert result.exit_code == 2, result.output
    assert "wiki: cannot read the target" in result.output


def edited_policies(service: SandboxedService, folder: Path) -> PlanningContext:
    """The policy set edited (engineers also get Finance) and not rolled out."""
    shutil.copytree(service.settings.policies_dir, folder)
    (folder / "engineering-finance.yaml").write_text(
        "name: engineering-finance\nwhen: {attribute: department, equals: Engineering}\n"
        "grants:\n  entra:\n    groups: [Finance]\n")
    targets = service.runtime.ctx.targets
    return PlanningContext(policies=load_policies(folder, targets), targets=targets)


async def test_policy_changed_without_a_rollout_is_drift_and_fix_replans(service, entra: EntraView, tmp_path: Path):
    await service.send(hire("p1", "P1", "Pola", "Icy", "Engineering"))
    await service.drain()
    rt = service.runtime
    edited = edited_policies(service, tmp_path / "edited-policies")
    report = await reconcile(rt.db, edited, rt.connectors, fix=False)
    assert [(d.target, d.group, d.kind, d.change, d.employee_id, d.login, d.display_name) for d in report.drift] == [
        ("entra", "Finance", "policy_drift", "gain", "P1", "pola.icy@example.com", "Pola Icy")]
    assert report.exit_code == 1
    fixed = await reconcile(rt.db, edited, rt.connectors, fix=True)
    assert fixed.replanned == 1
    await service.drain()
    assert "Finance" in entra.groups("P1")  # read from the sandbox
    assert (await reconcile(rt.db, edited, rt.connectors, fix=False)).drift == []


@pytest.mark.parametrize("target", TARGETS)
async def test_more_unknown_members_than_the_limit_are_held_not_removed(service, target):
    strangers = [await hand_made_account(service, target, f"temp{i}@example.com", f"Temp {i}") for i in range(3)]
    for remote_id in strangers:
        await add_to_group(service, target, GROUP[target], remote_id)
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True, max_removals=2)
    assert {d.login for d in report.drift} == {"temp0@example.com", "temp1@example.com", "temp2@example.com"}
    assert all(d.action.startswith("held: 3 unknown members") for d in report.drift)
    assert report.exit_code == 2 and report.removed == 0
    assert set(strangers) <= await members(service, target, GROUP[target])  # nothing removed
    done = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True, max_removals=3)
    assert done.removed == 3
    assert not set(strangers) & await members(service, target, GROUP[target])


async def test_fix_does_not_apply_a_policy_rollout_that_awaits_approval(service, entra: EntraView, tmp_path: Path):
    await service.send(hire("p2", "P2", "Hal", "Held", "Engineering"))
    await service.drain()
    folder = tmp_path / "edited-policies"
    edited = edited_policies(service, folder)
    limited = service.settings.model_copy(update={"policy_rollout_max_auto": 0, "policies_dir": folder})
    assert roll_out(service.db, edited, limited, trigger="test").outcome == "held"
    rt = service.runtime
    report = await reconcile(rt.db, edited, rt.connectors, fix=True)
    [line] = report.drift
    assert (line.kind, line.group, line.change, line.action) == (
        "policy_drift", "Finance", "gain", "held: the policy rollout awaits approval")
    assert report.replanned == 0
    await service.drain()
    assert "Finance" not in entra.groups("P2")  # read from the sandbox
