"""Revocation evidence that is complete: every group a leaver still holds (managed ones must be
empty, unmanaged ones listed and flagged), access that came back after the revocation as its own
incident line (never merged into the revocation), and one meaning of from/to in the CLI and the
API. Driven through signed HR events, the Graph sandbox (msgraph-sdk), scim2-server, the CLI
and the auditor API; every fact asserted is read back from the targets or the export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import utcnow
from provisioner.identities import repository as identities
from provisioner.reconcile.service import reconcile
from provisioner.settings import get_settings
from tests.support import EntraView, event, hire

runner = CliRunner()


@pytest.fixture
def cli(service, monkeypatch):
    """The `provisioner` command on the running service's database, policies and targets."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    get_settings.cache_clear()

    def invoke(*args: str):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result

    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def auditor(cli) -> dict[str, str]:
    token = cli("token", "create", "auditor-1", "--scope", "auditor").output.strip()
    return {"Authorization": f"Bearer {token}"}


async def _api(service, auditor, start: str, end: str, fmt: str = "json") -> httpx.Response:
    return await service.api.get("/evidence/revocations", params={"from": start, "to": end, "format": fmt},
                                 headers=auditor)


async def _record(service, auditor, employee_id: str) -> dict:
    day = str(utcnow().date())
    resp = await _api(service, auditor, day, day)
    assert resp.status_code == 200, resp.text
    [record] = [r for r in resp.json()["records"] if r["employee_id"] == employee_id]
    return record


def _wiki_id(service, employee_id: str) -> str:
    with service.db.transaction() as session:
        person = identities.by_employee_id(session, employee_id)
        return identities.account(session, person.id, "wiki").remote_id


async def _graph_patch_user(service, rid: str, body: dict) -> None:
    """A change made in Entra ID behind the service's back, through Graph's own API."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0") as graph:
        resp = await graph.patch(f"/users/{rid}", json=body,
                                 headers={"Authorization": f"Bearer {service.sandbox_token}"})
        assert resp.status_code == 204


async def _terminate(service, emp: str, department: str = "Engineering") -> None:
    await service.send(hire(f"{emp}-h", emp, "Lea", f"Ver{emp}", department))
    await service.drain()
    await service.send(event(f"{emp}-t", "terminate", emp, utcnow()))
    await service.drain()


async def test_leaver_left_in_unmanaged_groups_is_listed_and_flagged(service, entra: EntraView, auditor):
    vpn = service.sandbox.seed_group("VPN Admins")
    await service.send(hire("u1", "U1", "Una", "Managed", "Engineering"))
    await service.drain()
    rid = entra.remote_id("U1")
    service.sandbox.add_member_directly(vpn, rid)  # granted by hand, outside the service
    wiki_admins = await service.scim["wiki"].add("Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Wiki Admins",
        "members": [{"value": _wiki_id(service, "U1")}]})
    await service.send(event("u2", "terminate", "U1", utcnow()))
    await service.drain()

    # The targets: managed access gone, the unmanaged memberships left alone (never removed).
    assert entra.user("U1")["accountEnabled"] is False
    assert entra.groups("U1") == set()
    assert rid in service.sandbox.group_member_ids(vpn)
    assert await service.scim["wiki"].group_members("Wiki Admins") == {_wiki_id(service, "U1")}

    record = await _record(service, auditor, "U1")
    systems = {s["target"]: s for s in record["systems"]}
    entra_rb = systems["entra"]["readback"]
    assert systems["entra"]["verified"] is True  # managed groups empty and the account disabled
    assert entra_rb["groups_remaining"] == []
    assert entra_rb["enabled"] is False
    assert entra_rb["other_groups"] == [{"id": vpn, "name": "VPN Admins"}]
    assert entra_rb["unmanaged_access"] is True and systems["entra"]["unmanaged_access"] is True
    assert entra_rb["groups_read"] == "memberOf" and entra_rb["all_groups_read"] is True
    wiki_rb = systems["wiki"]["readback"]
    assert systems["wiki"]["verified"] is True
    assert wiki_rb["groups_remaining"] == [] and wiki_rb["enabled"] is False
    # scim2-server leaves User.groups out: the read-back asked /Groups by member instead.
    assert wiki_rb["other_groups"] == [{"id": wiki_admins["id"], "name": "Wiki Admins"}]
    assert wiki_rb["groups_read"] == "Groups filter members.value"
    assert record["unmanaged_access"] is True and record["all_verified"] is True

    resp = await _api(service, auditor, str(utcnow().date()), str(utcnow().date()), "csv")
    rows = {(r["employee_id"], r["record"], r["system"]): r for r in csv.DictReader(io.StringIO(resp.text))}
    row = rows[("U1", "revocation", "entra")]
    assert row["other_groups"] == f"VPN Admins ({vpn})"
    assert row["unmanaged_access"] == "True" and row["verified"] == "True" and row["groups_remaining"] == ""
    assert rows[("U1", "revocation", "wiki")]["other_groups"] == f"Wiki Admins ({wiki_admins['id']})"


async def test_leaver_without_other_groups_is_not_flagged(service, entra: EntraView, auditor):
    await _terminate(service, "N1", "Finance")
    record = await _record(service, auditor, "N1")
    for system in record["systems"]:
        assert system["verified"] is True
        assert system["readback"]["other_groups"] == []
        assert system["readback"]["unmanaged_access"] is False
    assert record["unmanaged_access"] is False


async def test_access_back_after_verification_is_its_own_incident(service, entra: EntraView, auditor):
    await _terminate(service, "R1")
    before = await _record(service, auditor, "R1")
    assert before["all_verified"] is True and before["incidents"] == []
    rid = entra.remote_id("R1")

    # Re-enabled in Entra ID behind the service's back, after the revocation was verified.
    await _graph_patch_user(service, rid, {"accountEnabled": True})
    # A later plan for the leaver (an HR correction) reads the target back, finds the access
    # and takes it away again.
    await service.send(event("r1-fix", "update", "R1", utcnow(), title="Former engineer"))
    await service.drain()
    assert entra.user("R1")["accountEnabled"] is False

    after = await _record(service, auditor, "R1")
    entra_before = next(s for s in before["systems"] if s["target"] == "entra")
    entra_after = next(s for s in after["systems"] if s["target"] == "entra")
    # The original revocation is unchanged: its own operations (one disable), its own times.
    assert entra_after["operations"] == entra_before["operations"]
    assert [o["kind"] for o in entra_after["operations"]].count("disable_account") == 1
    assert after["time_to_revoke_seconds"] == before["time_to_revoke_seconds"]
    assert entra_after["verified_at"] == entra_before["verified_at"]
    assert after["plan_ids"] == before["plan_ids"]
    # ... and the incident is a line of its own: detected, fixed, by whom.
    [incident] = after["incidents"]
    assert entra_after["incidents"] == [incident]
    assert incident["target"] == "entra" and incident["kind"] == "account_enabled_elsewhere"
    assert incident["detected_by"] == "read-back" and incident["fixed_by"] == "read-back"
    assert incident["fixed_at"] >= incident["detected_at"] > entra_before["verified_at"]
    assert incident["time_to_fix_seconds"] >= 0
    assert [(o["kind"], o["status"]) for o in incident["operations"]][:2] == [
        ("disable_account", "succeeded"), ("revoke_sessions", "succeeded")]
    assert incident["verified"] is True and incident["readback"]["enabled"] is False
    assert after["incidents_open"] == 0

    resp = await _api(service, auditor, str(utcnow().date()), str(utcnow().date()), "csv")
    rows = [r for r in csv.DictReader(io.StringIO(resp.text)) if r["employee_id"] == "R1"]
    assert [(r["record"], r["system"]) for r in rows] == [
        ("revocation", "entra"), ("revocation", "wiki"), ("incident", "entra")]
    line = rows[2]
    assert line["incident_kind"] == "account_enabled_elsewhere" and line["detected_by"] == "read-back"
    assert line["fixed_by"] == "read-back" and line["fixed_at"] == incident["fixed_at"]
    assert line["time_to_revoke_seconds"] == ""
    assert rows[0]["operations"].count("disable_account") == 1


async def test_reconciliation_replan_is_not_merged_into_the_revocation(service, entra: EntraView, auditor):
    await _terminate(service, "R2")
    before = await _record(service, auditor, "R2")
    await _graph_patch_user(service, entra.remote_id("R2"), {"accountEnabled": True})
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    assert [(d.kind, d.employee_id) for d in report.drift] == [("account_enabled_elsewhere", "R2")]
    await service.drain()
    assert entra.user("R2")["accountEnabled"] is False

    after = await _record(service, auditor, "R2")
    entra_before = next(s for s in before["systems"] if s["target"] == "entra")
    entra_after = next(s for s in after["systems"] if s["target"] == "entra")
    assert after["plan_ids"] == before["plan_ids"]  # reconciliation's re-plan stays out
    assert [o["kind"] for o in entra_after["operations"]].count("disable_account") == 1
    assert entra_after["operations"] == entra_before["operations"]
    assert after["time_to_revoke_seconds"] == before["time_to_revoke_seconds"]
    # Reconciliation's finding is the incident line, fixed when its re-plan's read-back verified.
    [incident] = after["incidents"]
    assert (incident["target"], incident["kind"], incident["detected_by"], incident["fixed_by"]) == (
        "entra", "account_enabled_elsewhere", "reconcile", "read-back")
    assert incident["plan_id"] not in after["plan_ids"]
    assert ("disable_account", "succeeded") in [(o["kind"], o["status"]) for o in incident["operations"]]
    assert incident["fixed_at"] >= incident["detected_at"] > entra_before["verified_at"]


async def test_day_means_the_same_in_the_api_and_the_cli(service, entra: EntraView, cli, auditor, tmp_path: Path):
    await _terminate(service, "D1", "Finance")
    with service.db.transaction() as session:
        from provisioner.intake import repository as events

        effective = events.get(session, "D1-t").effective_at.astimezone(UTC)
    day = str(effective.date())
    out = tmp_path / "evidence"
    result = cli("evidence", "export", "--from", day, "--to", day, "--format", "json", "--out", str(out))
    assert result.exit_code == 0, result.output
    exported = json.loads((out / f"revocations-{day}-{day}.json").read_text())
    manifest = json.loads((out / f"revocations-{day}-{day}.json.manifest.json").read_text())
    resp = await _api(service, auditor, day, day)
    assert resp.status_code == 200
    assert [r["employee_id"] for r in exported] == ["D1"]
    assert resp.json()["records"] == exported
    assert (resp.json()["manifest"]["from"], resp.json()["manifest"]["to"]) == (manifest["from"], manifest["to"])
    assert manifest["to"] == (effective.replace(hour=0, minute=0, second=0, microsecond=0)
                              + timedelta(days=1)).isoformat()

    # A date and time as `to` is exclusive, in both.
    exact = effective.isoformat()
    just_after = (effective + timedelta(microseconds=1)).isoformat()
    assert (await _api(service, auditor, day, exact)).json()["records"] == []
    assert [r["employee_id"] for r in (await _api(service, auditor, day, just_after)).json()["records"]] == ["D1"]
    result = cli("evidence", "export", "--from", day, "--to", exact, "--format", "json", "--out", str(out))
    assert result.exit_code == 0 and "0 leaver(s)" in result.output
    # The day before holds nothing; an offset moves the day (UTC otherwise).
    yesterday = str(effective.date() - timedelta(days=1))
    assert (await _api(service, auditor, yesterday, yesterday)).json()["records"] == []
    shifted = (effective - timedelta(hours=1)).astimezone().isoformat()
    assert [r["employee_id"] for r in (await _api(service, auditor, shifted, day)).json()["records"]] == ["D1"]
    # An empty or unreadable period is refused by both, saying why.
    bad = await _api(service, auditor, day, yesterday)
    assert bad.status_code == 400 and "must be after" in bad.json()["detail"]
    assert (await _api(service, auditor, "yesterday", day)).status_code == 400
    result = cli("evidence", "export", "--from", day, "--to", yesterday, "--out", str(out))
    assert result.exit_code == 2 and "must be after" in result.output


async def test_scim_app_listing_user_groups_is_read_from_them(service, cli, tmp_path: Path, monkeypatch):
    """A SCIM server that fills the User resource's ``groups`` (RFC 7643 §4.1.2): here the
    service's own /scim/v2, whose groups are the entitlement groups the policies grant."""
    from provisioner.targets.config import load_target_file
    from provisioner.targets.scim.connector import ScimConnector

    await service.send(hire("s1", "S1", "Sam", "Groups", "Engineering"))
    await service.drain()
    token = cli("scim", "token", "create", "reader", "--scope", "read").stdout.strip().splitlines()[-1]
    monkeypatch.setenv("SELF_SCIM_TOKEN", token)
    folder = tmp_path / "self-target"
    folder.mkdir()
    (folder / "self.yaml").write_text("kind: scim\nname: self\nbase_url: http://provisioner/scim/v2\n"
                                      "auth: {method: bearer, token: {env: SELF_SCIM_TOKEN}}\n")
    connector = ScimConnector.create(load_target_file(folder / "self.yaml"),
                                     transport=httpx.ASGITransport(app=service.app))
    try:
        with service.db.transaction() as session:
            person_id = identities.by_employee_id(session, "S1").id
        managed = await connector.resolve_groups(["Engineering"])
        state = (await connector.read_accounts([person_id], list(managed.values()), all_groups=True))[person_id]
        # Every group the server lists is one whose members (read from /Groups) hold the person.
        holders = {gid: person_id in await connector.group_member_ids(gid) for gid in state.all_groups}
    finally:
        await connector.aclose()
    assert state.groups_source == "User.groups"
    assert sorted(state.all_groups.values()) == ["All Staff", "Employees", "Engineering", "GitHub Users",
                                                 "wiki: Wiki Editors", "wiki: Wiki Readers"]
    assert all(holders.values())
    assert state.group_ids == {managed["Engineering"]}


async def test_entra_read_back_lists_every_group_across_memberof_pages():
    """More direct groups than one memberOf page holds (999): the @odata.nextLink is followed
    inside the $batch reads and every group comes back with its name."""
    from provisioner.sandbox.graph.app import GraphSandbox
    from tests.targets.entra_sandbox_helpers import connector_for

    sandbox = GraphSandbox(scale=1.0, throttle=False, tenant_size=100, token=None)
    connector = connector_for(sandbox)
    try:
        uid = sandbox.seed_user("many@example.test", display_name="Many Groups", employee_id="E1")
        groups = {sandbox.seed_group(f"Team {i:04d}"): f"Team {i:04d}" for i in range(1001)}
        for gid in groups:
            sandbox.add_member_directly(gid, uid)
        managed = list(groups)[500]
        before = sandbox.stats.http_calls
        state = (await connector.read_accounts([uid], [managed], all_groups=True))[uid]
        assert sandbox.stats.http_calls - before == 2  # user + first page, then the next link
        assert state.all_groups == groups and state.groups_source == "memberOf"
        assert state.group_ids == {managed}
        plain = (await connector.read_accounts([uid], [managed]))[uid]
        assert plain.all_groups is None and plain.group_ids == {managed}  # asked only about managed ones
    finally:
        await connector.aclose()
