"""Approvals of sensitive access through the HTTP API, read back from the Graph sandbox and the
wiki's scim2-server: a grant waits, is approved and lands; another is rejected and never lands;
revocations are never held; time-bound approvals end on time; nobody approves their own request;
auditors and viewers cannot decide; every decision is audited and the chain verifies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.audit.verify import verify_chain
from provisioner.clock import clock, utcnow
from provisioner.queue.models import Operation
from tests.support import event, hire

PROBLEM = "application/problem+json"


async def pending(cc, headers, employee_id=None):
    params = {"employee_id": employee_id} if employee_id else {}
    resp = await cc.api.get("/approvals", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["requests"]


async def test_a_sensitive_grant_waits_is_approved_and_lands(cc, tokens, graph, wiki):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.send(hire("h-e1", "E1", "Eve", "Coder", "Engineering"))
    await cc.drain()
    # Waiting: not in the target, nothing queued for it, visible with its diff.
    assert "Finance" not in graph.groups("F1") and "All Staff" in graph.groups("F1")
    assert await wiki.groups("E1") == {"Wiki Readers"}
    with cc.db.transaction() as session:
        assert not session.scalars(select(Operation).where(Operation.group_key.in_(["Finance", "Wiki Editors"]))).all()
    [f1] = await pending(cc, tokens["look"], "F1")
    assert (f1["employee_id"], f1["target"], f1["group"], f1["policies"], f1["status"]) == \
        ("F1", "entra", "Finance", ["finance"], "pending")
    [e1] = await pending(cc, tokens["audit"], "E1")
    assert (e1["target"], e1["group"], e1["policies"]) == ("wiki", "Wiki Editors", ["engineering"])
    # The person's plan view shows what waits.
    view = await cc.api.get("/identities/F1/plan", headers=tokens["root"])
    assert view.json()["steps"][0]["awaiting_approval"][0]["group"] == "Finance"

    ok = await cc.api.post(f"/approvals/{f1['id']}/approve", headers=tokens["alice"],
                           json={"comment": "finance analyst, ticket IT-1"})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["decided_by"]) == ("approved", "token:alice")
    bulk = await cc.api.post("/approvals/decisions", headers=tokens["bob"],
                             json={"decision": "approve", "ids": [e1["id"], 999999], "comment": "wiki editor"})
    assert bulk.status_code == 200, bulk.text
    assert [d["id"] for d in bulk.json()["decided"]] == [e1["id"]]
    assert bulk.json()["refused"] == [{"id": 999999, "reason": "no approval request 999999"}]
    await cc.drain()
    assert "Finance" in graph.groups("F1")  # read back from the sandbox
    assert await wiki.groups("E1") == {"Wiki Readers", "Wiki Editors"}  # over the SCIM server's API
    assert await pending(cc, tokens["look"]) == []
    again = await cc.api.post(f"/approvals/{f1['id']}/reject", headers=tokens["bob"], json={"comment": "late"})
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)

    # A revocation of sensitive access is never held: a mover and a leaver lose it at once.
    await cc.send(event("u-e1", "update", "E1", department="Sales"))
    await cc.send(event("t-f1", "terminate", "F1", immediate=True))
    await cc.drain()
    assert "Wiki Editors" not in await wiki.groups("E1")
    assert "Finance" not in graph.groups("F1")
    assert await pending(cc, tokens["look"]) == []
    _audited(cc, {"approval.requested", "approval.approved"})


async def test_a_rejected_grant_never_lands_even_after_a_replan(cc, tokens, graph):
    await cc.send(hire("h-f2", "F2", "Finn", "Nope", "Finance", title="Analyst"))
    await cc.drain()
    [f2] = await pending(cc, tokens["look"], "F2")
    missing = await cc.api.post(f"/approvals/{f2['id']}/reject", headers=tokens["alice"], json={})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "comment"
    no = await cc.api.post(f"/approvals/{f2['id']}/reject", headers=tokens["alice"],
                           json={"comment": "not needed for this role"})
    assert no.status_code == 200 and no.json()["status"] == "rejected"
    await cc.drain()
    assert "Finance" not in graph.groups("F2")
    # Planned again with the attributes unchanged (an API re-plan, an HR update of another field):
    # not asked again, not applied.
    replan = await cc.api.post("/identities/F2/replan", headers=tokens["root"])
    assert replan.status_code == 200
    assert replan.json()["awaiting_approval"][0]["status"] == "rejected"
    await cc.send(event("u-f2", "update", "F2", title="Senior Analyst"))
    await cc.drain()
    assert "Finance" not in graph.groups("F2")
    assert await pending(cc, tokens["look"], "F2") == []
    # The situation changes (moves away and back): asked again.
    await cc.send(event("u-f2b", "update", "F2", department="Sales"))
    await cc.drain()
    await cc.send(event("u-f2c", "update", "F2", department="Finance"))
    await cc.drain()
    assert len(await pending(cc, tokens["look"], "F2")) == 1
    _audited(cc, {"approval.rejected"})


async def test_auditor_and_viewer_get_403_on_every_decision(cc, tokens):
    await cc.send(hire("h-f5", "F5", "Fox", "Trot", "Finance"))
    await cc.drain()
    [req] = await pending(cc, tokens["look"], "F5")
    later = (utcnow() + timedelta(days=1)).isoformat()
    decisions = [
        (f"/approvals/{req['id']}/approve", {"comment": "x"}),
        (f"/approvals/{req['id']}/reject", {"comment": "x"}),
        ("/approvals/decisions", {"decision": "approve", "all": True, "comment": "x"}),
        ("/sod/exceptions", {"employee_id": "F5", "rule": "sell-and-approve", "comment": "x", "expires_at": later}),
        ("/sod/exceptions/revoke", {"employee_id": "F5", "rule": "sell-and-approve", "comment": "x"}),
    ]
    for who in ("audit", "look"):
        for path, body in decisions:
            resp = await cc.api.post(path, headers=tokens[who], json=body)
            assert resp.status_code == 403, (who, path, resp.text)
            assert resp.headers["content-type"].startswith(PROBLEM)
    for path, body in decisions:
        assert (await cc.api.post(path, json=body)).status_code == 401
    assert (await pending(cc, tokens["look"], "F5"))[0]["status"] == "pending"  # nothing decided


async def test_approver_cannot_approve_own_request_and_approvals_expire_on_time(cc, tokens, graph):
    await cc.send(hire("h-f3", "F3", "Fran", "Temp", "Finance"))
    await cc.drain()
    [req] = await pending(cc, tokens["look"], "F3")
    until = utcnow() + timedelta(hours=2)
    ok = await cc.api.post(f"/approvals/{req['id']}/approve", headers=tokens["alice"],
                           json={"comment": "quarter close", "expires_at": until.isoformat()})
    assert ok.status_code == 200 and ok.json()["expires_at"] == until.isoformat()
    await cc.drain()
    assert "Finance" in graph.groups("F3")

    clock.advance(timedelta(hours=1))
    await cc.drain()
    assert "Finance" in graph.groups("F3")  # not yet
    clock.advance(timedelta(hours=2))
    # root (an admin token) asks for a re-plan: the new request after expiry is root's own.
    replan = await cc.api.post("/identities/F3/replan", headers=tokens["root"])
    assert replan.status_code == 200, replan.text
    await cc.drain()
    assert "Finance" not in graph.groups("F3")  # revoked on time, read back from the sandbox
    [again] = await pending(cc, tokens["look"], "F3")
    assert again["requested_by"] == "token:root"
    own = await cc.api.post(f"/approvals/{again['id']}/approve", headers=tokens["root"], json={"comment": "mine"})
    assert own.status_code == 403 and "another approver" in own.json()["detail"]
    bulk = await cc.api.post("/approvals/decisions", headers=tokens["root"],
                             json={"decision": "approve", "all": True, "comment": "mine"})
    assert bulk.json()["decided"] == [] and bulk.json()["refused"][0]["id"] == again["id"]
    ok = await cc.api.post(f"/approvals/{again['id']}/approve", headers=tokens["bob"], json={"comment": "renewed"})
    assert ok.status_code == 200
    await cc.drain()
    assert "Finance" in graph.groups("F3")
    _audited(cc, {"approval.expired", "approval.approved", "approval.requested"})


def _audited(cc, kinds: set[str]) -> None:
    with cc.db.transaction() as session:
        seen = set(session.scalars(select(AuditRecord.kind)))
        assert kinds <= seen, kinds - seen
        decided = session.scalars(select(AuditRecord).where(AuditRecord.kind.in_(
            ["approval.approved", "approval.rejected"]))).all()
        assert all(r.data["by"] and r.data["comment"] for r in decided)
        report = verify_chain(session, [])
    assert report.ok, report.problems
