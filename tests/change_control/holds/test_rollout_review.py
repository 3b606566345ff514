"""Reviewed policy rollouts through the HTTP API and the CLI, read back from the Graph sandbox:
a rollout above ``policy_rollout_max_auto`` waits, its diff is read per target, group and
person, and it applies after approval; one below the limit applies on its own; a rejected
rollout cannot be applied without a new policy change; viewers and auditors get 403 on every
decision; every decision is in a verifying audit trail."""

from __future__ import annotations

import json

from provisioner.rollouts.models import RolloutStatus
from tests.change_control.holds.conftest import audit
from tests.policies.test_rollout import assert_after, assert_before, edit_policies, provision
from tests.support import EntraView


async def held_rollout(svc, tokens, policies) -> dict:
    await provision(svc)
    assert_before(EntraView(svc))
    edit_policies(policies)  # three people affected: more than the limit (2)
    result = await svc.runtime.reload_policies("sighup")
    assert (result.outcome, result.replanned, result.counts["people"]) == ("held", 0, 3)
    await svc.drain()
    assert_before(EntraView(svc))  # nothing changed while it waits
    pending = await svc.api.get("/change-control/rollouts", params={"status": "awaiting_approval"},
                                headers=tokens["viewer"])
    assert pending.status_code == 200, pending.text
    [rollout] = pending.json()
    assert rollout["id"] == result.rollout_id and rollout["counts"]["people"] == 3
    return rollout


async def test_a_rollout_above_the_limit_waits_is_read_and_applies_after_approval(svc, cli, tokens, policies):
    rollout = await held_rollout(svc, tokens, policies)
    rid = rollout["id"]
    url = f"/change-control/rollouts/{rid}"
    person = (await svc.api.get(url, params={"person": "S2"}, headers=tokens["auditor"])).json()
    assert person["person"]["targets"] == {"entra": {"gain": [], "lose": ["Sales", "Salesforce Users"]}}
    group = (await svc.api.get(url, params={"group": "Salesforce Users"}, headers=tokens["viewer"])).json()
    [(target, groups)] = group["diff"].items()
    assert target == "entra" and list(groups) == ["Salesforce Users"]
    assert [p["employee_id"] for p in groups["Salesforce Users"]["gain"]] == ["F1"]
    assert [p["employee_id"] for p in groups["Salesforce Users"]["lose"]] == ["S2"]
    by_target = (await svc.api.get(url, params={"target": "entra"}, headers=tokens["viewer"])).json()
    assert by_target["diff"]["entra"]["Berlin Office"]["lose"] == [{"employee_id": "E1", "display_name": "Ada Lovelace"}]
    assert (await svc.api.get(url, params={"target": "wiki"}, headers=tokens["viewer"])).json()["diff"] == {}
    shown = cli("rollouts", "show", str(rid), "--person", "E1")
    assert shown.exit_code == 0 and "E1 in entra: gains -; loses Berlin Office" in shown.output
    table = cli("rollouts", "show", str(rid), "--group", "Berlin Office")
    assert "Berlin Office" in table.output and "Sales" not in table.output.split("Berlin Office", 1)[1]
    assert "awaiting_approval" in cli("rollouts", "list").output
    metrics = await svc.metrics()
    assert "provisioner_rollouts_pending 1.0" in metrics
    for role in ("viewer", "auditor"):
        for action in ("approve", "reject"):
            denied = await svc.api.post(f"{url}/{action}", headers=tokens[role], json={"comment": "x"})
            assert denied.status_code == 403, denied.text
            assert denied.headers["content-type"].startswith("application/problem+json")
    approved = await svc.api.post(f"{url}/approve", headers=tokens["approver"], json={"comment": "reviewed in CAB"})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["outcome"], approved.json()["replanned"]) == ("applied", 3)
    await svc.drain()
    assert_after(EntraView(svc))
    listed = json.loads(cli("rollouts", "list", "--json").output)
    latest = next(r for r in listed if r["id"] == rid)
    assert (latest["status"], latest["decided_by"], latest["comment"]) == (
        RolloutStatus.APPLIED, "token:approver-1", "reviewed in CAB")
    [decision] = audit(svc, "policy.rollout.approved")
    assert (decision["rollout_id"], decision["decided_by"], decision["comment"]) == (rid, "token:approver-1",
                                                                                      "reviewed in CAB")
    assert audit(svc, "policy.rollout")[-1]["status"] == RolloutStatus.APPLIED
    assert (await svc.api.post(f"{url}/approve", headers=tokens["approver"])).status_code == 409
    assert "provisioner_rollouts_pending 0.0" in await svc.metrics()
    assert audit(svc, "hold.") == []  # an approved rollout is not held again as a mass change
    assert cli("audit", "verify").exit_code == 0


async def test_a_rollout_below_the_limit_applies_on_its_own(svc, policies, tokens):
    await provision(svc)
    (policies / "berlin.yaml").unlink()  # one person affected: within the limit (2)
    result = await svc.runtime.reload_policies("sighup")
    assert (result.outcome, result.replanned) == ("applied", 1)
    await svc.drain()
    assert "Berlin Office" not in EntraView(svc).groups("E1")
    pending = await svc.api.get("/change-control/rollouts", params={"status": "awaiting_approval"},
                                headers=tokens["viewer"])
    assert pending.json() == []


async def test_a_rejected_rollout_is_not_applied_without_a_new_policy_change(svc, cli, tokens, policies):
    rollout = await held_rollout(svc, tokens, policies)
    rid = rollout["id"]
    out = cli("rollouts", "reject", str(rid), "--comment", "Sales must keep the CRM", "--as", "bob")
    assert out.exit_code == 0, out.output
    [decision] = audit(svc, "policy.rollout.rejected")
    assert (decision["rollout_id"], decision["decided_by"], decision["comment"]) == (rid, "cli:bob",
                                                                                      "Sales must keep the CRM")
    # Not by approving it now, nor by reloading or restarting with the same policies.
    late = await svc.api.post(f"/change-control/rollouts/{rid}/approve", headers=tokens["approver"])
    assert late.status_code == 409 and "rejected" in late.json()["detail"]
    assert cli("rollouts", "approve", str(rid)).exit_code == 2
    reloaded = cli("policy", "reload")
    assert reloaded.exit_code == 2 and "rejected by an approver" in reloaded.output
    for _ in range(2):
        assert (await svc.runtime.reload_policies("sighup")).outcome == "rejected"
    assert (await svc.runtime.start()).outcome == "rejected"
    await svc.drain()
    assert_before(EntraView(svc))
    # A new policy change is a new rollout: held again, then approved from the CLI.
    (policies / "finance.yaml").write_text((policies / "finance.yaml").read_text() + "\n# reviewed\n")
    same = await svc.runtime.reload_policies("sighup")
    assert same.outcome == "rejected"  # a comment is not a policy change
    sales = policies / "sales.yaml"
    sales.write_text(sales.read_text().replace("[Sales, Salesforce Users]", "[Sales, Salesforce Users, Berlin Office]"))
    fresh = await svc.runtime.reload_policies("sighup")
    assert fresh.outcome == "held" and fresh.rollout_id != rid
    approved = cli("rollouts", "approve", str(fresh.rollout_id), "--comment", "Berlin for Sales too")
    assert approved.exit_code == 0, approved.output
    await svc.drain()
    entra = EntraView(svc)
    assert "Berlin Office" in entra.groups("S1") and "Berlin Office" not in entra.groups("E1")
    assert cli("audit", "verify").exit_code == 0
