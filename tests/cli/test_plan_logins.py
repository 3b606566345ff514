"""`provisioner plan` and ``GET /identities/{id}/plan`` show the login a person has or will get."""

from __future__ import annotations

import json
from datetime import timedelta

from provisioner.clock import utcnow
from provisioner.planner.preview import preview
from tests.cli.test_cli import cli_env, invoke  # noqa: F401  (the fixture and the runner)
from tests.support import EntraView, event, hire


async def test_plan_shows_the_login_a_future_joiner_will_get(cli_env, entra: EntraView):  # noqa: F811
    await cli_env.send(hire("f1", "F1", "Ørjan", "Øye", "Sales", at=utcnow() + timedelta(days=5)))
    await cli_env.drain()
    assert entra.user("F1") is None  # not yet
    result = invoke("plan", "F1", "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)
    assert {step["login"] for step in steps} == {"orjan.oye@example.com"}
    hired = steps[-1]
    assert hired["targets"]["entra"]["login"] == "orjan.oye@example.com"
    assert "create_account" in [op["kind"] for op in hired["targets"]["entra"]["operations"]]
    table = invoke("plan", "F1")
    assert "login orjan.oye@example.com" in table.output
    admin = invoke("token", "create", "it-admin", "--scope", "admin").output.strip()
    over_http = await cli_env.api.get("/identities/F1/plan", headers={"Authorization": f"Bearer {admin}"})
    assert over_http.status_code == 200
    assert over_http.json()["steps"][-1]["targets"]["entra"]["login"] == "orjan.oye@example.com"


async def test_plan_shows_the_login_entra_holds(cli_env, entra: EntraView):  # noqa: F811
    cli_env.sandbox.seed_user("grace.hopper@example.com", display_name="Someone Else")
    await cli_env.send(hire("g1", "G1", "Grace", "Hopper", "Finance"))
    await cli_env.drain()
    steps = json.loads(invoke("plan", "G1", "--json").output)
    assert steps[0]["login"] == "grace.hopper2@example.com"
    assert steps[0]["targets"]["entra"]["login"] == entra.user("G1")["userPrincipalName"] == "grace.hopper2@example.com"


async def test_plan_shows_a_pending_rename(database_url, tmp_path):
    from provisioner.demo.harness import SandboxedService

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           target_overrides={"accounts": {"domain": "example.com", "on_name_change": "rename"}})
    try:
        await svc.send(hire("r1", "R1", "Zoë", "Brontë", "Sales"))
        await svc.drain()
        await svc.send(event("r2", "update", "R1", utcnow() + timedelta(days=2), family_name="Nicholls"))
        await svc.drain()
        now, renamed = preview(svc.db, svc.runtime.ctx, "R1")
        assert now["login"] == now["targets"]["entra"]["login"] == "zoe.bronte@example.com"
        assert renamed["login"] == "zoe.nicholls@example.com"
        assert renamed["targets"]["entra"]["login"] == "zoe.bronte@example.com -> zoe.nicholls@example.com"
        assert "update_account" in [op["kind"] for op in renamed["targets"]["entra"]["operations"]]
        assert EntraView(svc).user("R1")["userPrincipalName"] == "zoe.bronte@example.com"  # nothing applied
    finally:
        await svc.close()
