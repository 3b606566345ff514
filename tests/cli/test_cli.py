"""The `provisioner` command as an operator uses it: policy check, CSV import, plan preview,
dead-letter list and replay, evidence export with its manifest, tokens."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import utcnow
from provisioner.queue import repository as queue
from provisioner.settings import get_settings
from tests.support import EntraView, event, hire

runner = CliRunner()


@pytest.fixture
def cli_env(service, monkeypatch):
    """CLI commands pointed at the same database, policies and targets as the running service."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    get_settings.cache_clear()
    yield service
    get_settings.cache_clear()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_policy_check_passes_on_the_shipped_policies(cli_env):
    result = invoke("policy", "check")
    assert result.exit_code == 0, result.output
    assert "8 policies" in result.output


def test_policy_check_reports_file_and_line(cli_env, tmp_path: Path, monkeypatch):
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "good.yaml").write_text("name: ok\nbirthright: true\ngrants:\n  entra:\n    groups: [All Staff]\n")
    (folder / "bad.yaml").write_text(
        "name: broken\n"
        "when:\n"
        "  all:\n"
        "    - attribute: department\n"
        "      equals: Sales\n"
        "    - attribute: shoe_size\n"
        "      equals: 44\n"
        "grants:\n"
        "  entra:\n"
        "    groups: [Sales, Nonexistent Group]\n")
    (folder / "syntax.yaml").write_text("name: [unclosed\n")
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(folder))
    get_settings.cache_clear()
    result = invoke("policy", "check")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith(f"{folder / 'bad.yaml'}:6:") and "shoe_size" in line for line in lines), lines
    assert any(line.startswith(f"{folder / 'syntax.yaml'}:") and "not valid YAML" in line for line in lines)
    # With the schema fixed, the unknown group is reported at its own line.
    (folder / "bad.yaml").write_text(
        "name: broken\nwhen: {attribute: department, equals: Sales}\ngrants:\n  entra:\n"
        "    groups:\n      - Sales\n      - Nonexistent Group\n")
    (folder / "syntax.yaml").unlink()
    result = invoke("policy", "check")
    assert result.exit_code == 1
    assert f"{folder / 'bad.yaml'}:7: grants.entra.groups: 'Nonexistent Group' is not a managed group" in result.output


async def test_import_csv_loads_an_extract_and_is_idempotent(cli_env, entra: EntraView, tmp_path: Path):
    extract = tmp_path / "extract.csv"
    extract.write_text(
        "employee_id,given_name,family_name,department,location,employment_type,badge_colour\n"
        "C100,Mary,Jackson,Engineering,DE-BER-2,employee,blue\n"
        "C101,Dorothy,Vaughan,Sales,US-NYC,employee,red\n")
    result = invoke("import", str(extract))
    assert result.exit_code == 0, result.output
    assert "2 event(s) stored, 0 already known" in result.output
    assert "0 event(s) stored, 2 already known" in invoke("import", str(extract)).output  # same file again
    await cli_env.drain()
    assert entra.groups("C100") == {"All Staff", "Employees", "Engineering", "GitHub Users", "Berlin Office"}
    with cli_env.db.transaction() as session:
        from provisioner.identities import repository

        assert repository.by_employee_id(session, "C101").extra == {"badge_colour": "red"}


def test_import_csv_rejects_a_bad_row_and_stores_nothing(cli_env, tmp_path: Path):
    extract = tmp_path / "bad.csv"
    extract.write_text("employee_id,given_name,family_name,effective_at\n"
                       "C200,Ok,Row,2026-01-01T00:00:00+00:00\nC201,Bad,Row,not-a-date\n")
    result = invoke("import", str(extract))
    assert result.exit_code == 2
    assert f"{extract}:3: effective_at" in result.output
    assert "nothing was stored" in result.output
    with cli_env.db.transaction() as session:
        from provisioner.intake import repository

        assert repository.get(session, "C200") is None
        assert not repository.pending_for(session, "C200")


async def test_plan_previews_pending_events_without_applying(cli_env, entra: EntraView):
    await cli_env.send(hire("v1", "V1", "Pre", "View", "Sales"))
    await cli_env.drain()
    await cli_env.send(event("v2", "transfer", "V1", utcnow() + timedelta(days=3), department="Engineering"))
    result = invoke("plan", "V1", "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)
    assert steps[0]["after"] == "now"
    after = steps[1]["targets"]["entra"]
    assert after["add"] == ["Engineering", "GitHub Users"]
    assert after["remove"] == ["Sales", "Salesforce Users"]
    wiki = steps[1]["targets"]["wiki"]  # the SCIM app is planned like Entra ID
    assert wiki["add"] == ["Wiki Editors"] and wiki["remove"] == [] and wiki["account"] == "enabled"
    await cli_env.drain()
    assert "Sales" in entra.groups("V1")  # nothing was applied
    table = invoke("plan", "V1")
    assert "add_member" in table.output and "remove_member" in table.output
    assert invoke("plan", "NOBODY").exit_code == 2


async def test_dead_letter_list_and_replay_from_the_cli(cli_env, entra: EntraView):
    await cli_env.send(hire("q1", "Q1", "Dead", "Letter", "Finance"))
    await cli_env.drain()
    cli_env.sandbox.fail_next("POST", r"revokeSignInSessions", status=400, code="Request_BadRequest",
                              message="Cannot revoke sessions for this account.")
    await cli_env.send(event("q2", "terminate", "Q1"))
    await cli_env.drain()
    listing = invoke("ops", "list", "--dead")
    assert listing.exit_code == 0
    assert "revoke_sessions" in listing.output and "Cannot revoke sessions" in listing.output
    with cli_env.db.transaction() as session:
        [dead] = queue.dead(session)
    assert invoke("ops", "replay").exit_code == 2  # neither an id nor --all
    result = invoke("ops", "replay", "--all")
    assert result.exit_code == 0 and f"replaying 1 operation(s): {dead.id}" in result.output
    await cli_env.drain()
    with cli_env.db.transaction() as session:
        assert queue.get(session, dead.id).status == "succeeded"
    assert invoke("ops", "replay", str(dead.id)).exit_code == 2  # no longer dead


async def test_evidence_export_with_manifest(cli_env, tmp_path: Path):
    await cli_env.send(hire("x1", "X1", "Ex", "Port", "Engineering"))
    await cli_env.drain()
    await cli_env.send(event("x2", "terminate", "X1"))
    await cli_env.drain()
    day = utcnow().date()
    out = tmp_path / "evidence"
    for fmt in ("csv", "json"):
        result = invoke("evidence", "export", "--from", str(day), "--to", str(day), "--format", fmt,
                        "--out", str(out))
        assert result.exit_code == 0, result.output
        export = out / f"revocations-{day}-{day}.{fmt}"
        manifest = json.loads(export.with_name(export.name + ".manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
        assert manifest["leavers"] == 1
    rows = (out / f"revocations-{day}-{day}.csv").read_text().splitlines()
    assert rows[0].startswith("employee_id,display_name")
    assert "X1" in rows[1] and ",entra," in rows[1] and ",True," in rows[1]
    record = json.loads((out / f"revocations-{day}-{day}.json").read_text())[0]
    assert record["all_verified"] is True
    assert record["systems"][0]["readback"]["groups_remaining"] == []


async def test_evidence_api_is_for_auditors_only(cli_env):
    await cli_env.send(hire("y1", "Y1", "Au", "Ditor", "Finance"))
    await cli_env.drain()
    await cli_env.send(event("y2", "terminate", "Y1"))
    await cli_env.drain()
    auditor = invoke("token", "create", "auditor-1", "--scope", "auditor").output.strip()
    admin = invoke("token", "create", "it-admin", "--scope", "admin").output.strip()
    params = {"from": str(utcnow().date()), "to": str((utcnow() + timedelta(days=1)).date())}
    assert (await cli_env.api.get("/evidence/revocations", params=params)).status_code == 401
    bad = await cli_env.api.get("/evidence/revocations", params=params, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    ok = await cli_env.api.get("/evidence/revocations", params=params,
                               headers={"Authorization": f"Bearer {auditor}"})
    assert ok.status_code == 200
    body = ok.json()
    assert [r["employee_id"] for r in body["records"]] == ["Y1"]
    assert ok.headers["X-Evidence-SHA256"] == body["manifest"]["sha256"]
    csv = await cli_env.api.get("/evidence/revocations", params={**params, "format": "csv"},
                                headers={"Authorization": f"Bearer {auditor}"})
    assert csv.headers["X-Evidence-SHA256"] == hashlib.sha256(csv.content).hexdigest()
    # The plan preview is for IT admins; an auditor token is not enough for it.
    forbidden = await cli_env.api.get("/identities/Y1/plan", headers={"Authorization": f"Bearer {auditor}"})
    assert forbidden.status_code == 403
    preview = await cli_env.api.get("/identities/Y1/plan", headers={"Authorization": f"Bearer {admin}"})
    assert preview.status_code == 200 and preview.json()["steps"][0]["state"] == "terminated"
    assert invoke("token", "revoke", "auditor-1").exit_code == 0
    revoked = await cli_env.api.get("/evidence/revocations", params=params,
                                    headers={"Authorization": f"Bearer {auditor}"})
    assert revoked.status_code == 401


async def test_metrics_expose_dead_letters_for_alerting(cli_env):
    await cli_env.send(hire("z1", "Z1", "Me", "Trics", "Finance"))
    await cli_env.drain()
    cli_env.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest", message="nope")
    await cli_env.send(event("z2", "update", "Z1", title="Boss"))
    await cli_env.drain()
    text = await cli_env.metrics()
    assert 'provisioner_queue_operations{status="dead"} 1.0' in text
    assert "provisioner_target_calls_total" in text
