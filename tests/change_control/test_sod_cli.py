"""Separation of duties and the CLI: a grant that would create a conflict is blocked and flagged,
granted with an expiring exception, and revoked on time (read back from the Graph sandbox);
`policy check` names who holds a conflict; approvals are listed and decided from the CLI; the
audit chain verifies."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import clock, utcnow
from tests.support import event, hire

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


async def test_sod_conflict_blocked_then_excepted_until_it_expires(cli_env, tokens, graph):
    cc = cli_env
    await cc.send(hire("h-s1", "S1", "Sam", "Seller", "Sales"))
    await cc.drain()
    assert "Sales" in graph.groups("S1")
    await cc.send(event("u-s1", "update", "S1", job_code="MGR1"))  # managers policy: would add Managers
    await cc.drain()
    assert "Managers" not in graph.groups("S1") and "Sales" in graph.groups("S1")
    conflicts = (await cc.api.get("/sod/conflicts", headers=tokens["look"])).json()
    [blocked] = conflicts["blocked"]
    assert (blocked["employee_id"], blocked["group"], blocked["rule"]) == ("S1", "Managers", "sell-and-approve")
    assert blocked["conflicts_with"] == [{"target": "entra", "group": "Sales"}]
    assert conflicts["held"] == []
    listed = invoke("sod", "list", "--json")
    assert json.loads(listed.output)["blocked"][0]["group"] == "Managers"
    plan = invoke("plan", "S1")
    assert "entra:Managers blocked by separation of duties (sell-and-approve)" in plan.output

    # Bad input: one line saying what is wrong; nothing stored.
    assert invoke("sod", "exception", "grant", "S1", "sell-and-approve", "--expires", "tomorrow",
                  "--comment", "x").exit_code == 2
    too_far = invoke("sod", "exception", "grant", "S1", "sell-and-approve", "--comment", "x",
                     "--expires", (utcnow() + timedelta(days=400)).isoformat())
    assert too_far.exit_code == 2 and "at most 90 days" in too_far.output
    assert invoke("sod", "exception", "grant", "S1", "no-such-rule", "--comment", "x", "--expires",
                  (utcnow() + timedelta(days=1)).isoformat()).exit_code == 2
    until = utcnow() + timedelta(hours=4)
    granted = invoke("sod", "exception", "grant", "S1", "sell-and-approve", "--expires", until.isoformat(),
                     "--comment", "interim sales lead until the new manager starts", "--by", "carol")
    assert granted.exit_code == 0, granted.output
    await cc.drain()
    assert {"Managers", "Sales"} <= graph.groups("S1")  # read back: the exception applied it
    check = invoke("policy", "check")
    assert check.exit_code == 0, check.output  # held, but with an exception
    assert "S1" in check.output and "sell-and-approve" in check.output
    exceptions = (await cc.api.get("/sod/exceptions", headers=tokens["audit"])).json()["exceptions"]
    assert [(e["employee_id"], e["decided_by"], e["expires_at"]) for e in exceptions] == \
        [("S1", "cli:carol", until.isoformat())]

    clock.advance(timedelta(hours=5))
    await cc.drain()  # the expiry job runs with the queue
    assert "Managers" not in graph.groups("S1") and "Sales" in graph.groups("S1")  # revoked on time
    assert (await cc.api.get("/sod/exceptions", headers=tokens["look"])).json()["exceptions"] == []
    assert invoke("policy", "check").exit_code == 0  # nobody holds the conflict any more
    assert len((await cc.api.get("/sod/conflicts", headers=tokens["look"])).json()["blocked"]) == 1  # asks again

    # Granted again through the API, then revoked before its time.
    body = {"employee_id": "S1", "rule": "sell-and-approve", "comment": "again",
            "expires_at": (utcnow() + timedelta(days=1)).isoformat()}
    resp = await cc.api.post("/sod/exceptions", headers=tokens["alice"], json=body)
    assert resp.status_code == 201, resp.text
    await cc.drain()
    assert "Managers" in graph.groups("S1")
    resp = await cc.api.post("/sod/exceptions/revoke", headers=tokens["bob"],
                             json={"employee_id": "S1", "rule": "sell-and-approve", "comment": "manager started"})
    assert resp.status_code == 200, resp.text
    await cc.drain()
    assert "Managers" not in graph.groups("S1")
    metrics = await cc.metrics()
    assert 'provisioner_approvals_pending{kind="sod"} 1.0' in metrics
    assert 'provisioner_sod_conflicts{excepted="false"} 0.0' in metrics

    verified = invoke("audit", "verify")
    assert verified.exit_code == 0 and verified.output.startswith("ok:"), verified.output


async def test_approvals_from_the_cli(cli_env, graph):
    cc = cli_env
    await cc.send(hire("h-f4", "F4", "Flo", "Books", "Finance"))
    await cc.send(hire("h-f6", "F6", "Fil", "Books", "Finance"))
    await cc.drain()
    listed = json.loads(invoke("approvals", "list", "--json").output)
    ids = {r["employee_id"]: r["id"] for r in listed}
    assert set(ids) == {"F4", "F6"}
    table = invoke("approvals", "list")
    assert "F4" in table.output and "Finance" in table.output
    shown = json.loads(invoke("approvals", "show", str(ids["F4"])).output)
    assert shown["policies"] == ["finance"]
    no_comment = invoke("approvals", "approve", str(ids["F4"]))
    assert no_comment.exit_code == 2 and "--comment" in no_comment.output
    assert invoke("approvals", "approve").exit_code == 2  # neither ids nor --all
    ok = invoke("approvals", "approve", str(ids["F4"]), "--comment", "controller", "--by", "dave")
    assert ok.exit_code == 0, ok.output
    rejected = invoke("approvals", "reject", "--all", "--comment", "not this quarter")
    assert rejected.exit_code == 0 and "rejected 1 request(s)" in rejected.output
    await cc.drain()
    assert "Finance" in graph.groups("F4") and "Finance" not in graph.groups("F6")
    decided = json.loads(invoke("approvals", "list", "--status", "approved", "--json").output)
    assert [(r["employee_id"], r["decided_by"], r["comment"]) for r in decided] == [("F4", "cli:dave", "controller")]
    assert invoke("approvals", "show", "424242").exit_code == 2
    assert invoke("approvals", "show", "99999999999").exit_code == 2  # beyond INTEGER: not found, on PostgreSQL too
    created = invoke("token", "create", "vic", "--scope", "viewer")
    assert created.exit_code == 0 and created.output.startswith("pvt_")
    assert invoke("audit", "verify").exit_code == 0
