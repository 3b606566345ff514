"""The console over HTTP (no browser): sign-in with an API token, roles, CSRF, decisions through
the change-control services landing in the Graph sandbox, every action in the audit trail."""

from __future__ import annotations

from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.audit.verify import verify_chain
from tests.console.conftest import bearer
from tests.support import event, hire


async def _pending_ids(cc, headers):
    resp = await cc.api.get("/approvals", headers=headers)
    return [r["id"] for r in resp.json()["requests"]]


async def test_sign_in_with_a_token_and_read_the_overview(cc, tokens, console):
    c = console()
    first = await c.get("/console/")
    assert first.url.path == "/console/sign-in"  # not signed in: sent to sign in
    bad = await c.sign_in("not-a-token")
    assert bad.status_code == 401 and "unknown or revoked token" in bad.text
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    ok = await c.sign_in(bearer(tokens["look"]))
    assert ok.status_code == 200 and ok.url.path == "/console/"
    assert "Signed in as <strong>look</strong> (viewer)" in ok.text
    assert '<span class="n" id="n-approvals">1</span>' in ok.text  # Fay's Finance grant waits
    cookie = ok.history[0].headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http on localhost only (the demo, the tests)


async def test_a_viewer_sees_no_decisions_and_is_refused_if_posting(cc, tokens, console, graph):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    [rid] = await _pending_ids(cc, tokens["look"])
    viewer = console()
    await viewer.sign_in(bearer(tokens["look"]))
    page = await viewer.get("/console/approvals")
    assert "Fay Ledger" in page.text and "Approve selected" not in page.text
    refused = await viewer.post("/console/approvals/decide", {"ids": str(rid), "decision": "approve"})
    assert refused.status_code == 403 and "may read but not decide" in refused.text
    assert await _pending_ids(cc, tokens["look"]) == [rid]


async def test_a_form_without_its_csrf_token_is_refused(cc, tokens, console):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    [rid] = await _pending_ids(cc, tokens["look"])
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    resp = await alice.post("/console/approvals/decide", {"ids": str(rid), "decision": "approve"}, csrf=False)
    assert resp.status_code == 403 and "CSRF" in resp.text
    other = console()
    await other.sign_in(bearer(tokens["bob"]))
    alice.csrf = other.csrf  # another session's token is no better
    resp = await alice.post("/console/approvals/decide", {"ids": str(rid), "decision": "approve"})
    assert resp.status_code == 403
    assert await _pending_ids(cc, tokens["look"]) == [rid]


async def test_an_approver_approves_and_the_grant_lands_and_is_audited(cc, tokens, console, graph):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    assert "Finance" not in graph.groups("F1")
    [rid] = await _pending_ids(cc, tokens["look"])
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    done = await alice.post("/console/approvals/decide",
                            {"ids": str(rid), "decision": "approve", "comment": "analyst, ticket IT-7"})
    assert done.status_code == 200 and "approved 1 request(s)" in done.text, done.text
    await cc.drain()
    assert "Finance" in graph.groups("F1")  # read back from the Graph sandbox
    with cc.db.transaction() as session:
        kinds = {(r.kind, (r.data or {}).get("by")) for r in session.scalars(select(AuditRecord))}
        approved = [r for r in session.scalars(select(AuditRecord).where(AuditRecord.kind == "approval.approved"))]
        assert verify_chain(session).ok
    assert ("console.signed_in", "console:alice") in kinds and ("console.approvals.approve", "console:alice") in kinds
    assert approved and "console:alice" in str(approved[0].data)


async def test_evidence_is_for_auditors_and_a_bad_period_is_named(cc, tokens, console):
    viewer = console()
    await viewer.sign_in(bearer(tokens["look"]))
    assert "/console/evidence" not in (await viewer.get("/console/")).text
    refused = await viewer.get("/console/evidence/download", params={"from": "2026-01-01", "to": "2026-01-31"})
    assert refused.status_code == 403 and "not an auditor" in refused.text
    auditor = console()
    await auditor.sign_in(bearer(tokens["audit"]))
    bad = await auditor.get("/console/evidence/download", params={"from": "2026-02-30", "to": "2026-01-31"})
    assert bad.status_code == 400 and "from" in bad.text
    ok = await auditor.get("/console/evidence/download", params={"from": "2026-01-01", "to": "2026-01-31",
                                                                "format": "json", "part": "manifest"})
    assert ok.status_code == 200 and ok.json()["leavers"] == 0
    assert ok.headers["content-disposition"].startswith('attachment; filename="revocations-20260101-20260201')


async def test_the_overview_numbers_link_to_their_lists(cc, tokens, console):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    await cc.send(event("u-x9", "terminate", "X9"))  # nobody: the transition is refused
    cc.sandbox.fail_next("POST", r"revokeSignInSessions", status=400, code="Request_BadRequest",
                         message="refused by the test")
    await cc.send(event("t-f1", "terminate", "F1", immediate=True))
    await cc.drain()
    c = console()
    overview = await c.sign_in(bearer(tokens["look"]))
    assert '<span class="n" id="n-rejected">1</span>' in overview.text
    rejected = await c.get("/console/people", params={"show": "rejected-events"})
    assert "u-x9" in rejected.text and "X9" in rejected.text
    leavers = await c.get("/console/people", params={"show": "unverified-leavers"})
    assert "Leavers whose revocation is not yet verified" in leavers.text and "Fay Ledger" in leavers.text
    person = await c.get("/console/people/F1")
    assert "terminated" in person.text and "revoke_sessions on entra" in person.text


async def test_replay_all_dead_letters_of_a_target(cc, tokens, console, graph):
    await cc.send([hire("h-a1", "A1", "Ann", "One", "Sales"), hire("h-a2", "A2", "Abe", "Two", "Sales")])
    await cc.drain()
    for n in (1, 2):
        cc.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest", message=f"bad title {n}")
    await cc.send([event("u-a1", "update", "A1", title="Lead"), event("u-a2", "update", "A2", title="Lead")])
    await cc.drain()
    assert {graph.user(e).get("jobTitle") for e in ("A1", "A2")} != {"Lead"}
    viewer = console()
    await viewer.sign_in(bearer(tokens["look"]))
    listed = await viewer.get("/console/dead-letters", params={"target": "entra"})
    assert listed.text.count("update_account") == 2 and "Replay all of entra" not in listed.text
    refused = await viewer.post("/console/dead-letters/replay", {"scope": "target", "target": "entra"})
    assert refused.status_code == 403
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    done = await alice.post("/console/dead-letters/replay", {"scope": "target", "target": "entra"})
    assert "replayed 2 operation(s)" in done.text, done.text
    await cc.drain()
    assert {graph.user(e)["jobTitle"] for e in ("A1", "A2")} == {"Lead"}  # read back from the sandbox


async def test_the_sign_in_form_needs_its_csrf_token(cc, tokens, console):
    c = console()
    refused = await c.http.post("/console/sign-in", data={"token": bearer(tokens["alice"])})
    assert refused.status_code == 403 and "CSRF" in refused.text
    await c.get("/console/sign-in")  # the cookie, but another value in the form
    forged = await c.http.post("/console/sign-in", data={"token": bearer(tokens["alice"]), "csrf_token": "x" * 32})
    assert forged.status_code == 403
    assert (await c.get("/console/")).url.path == "/console/sign-in"  # not signed in
    assert (await c.sign_in(bearer(tokens["alice"]))).url.path == "/console/"


async def test_reject_needs_a_comment_and_is_recorded_with_the_person(cc, tokens, console, graph):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    [rid] = await _pending_ids(cc, tokens["look"])
    bob = console()
    await bob.sign_in(bearer(tokens["bob"]))
    bare = await bob.post("/console/approvals/decide", {"ids": str(rid), "decision": "reject"})
    assert bare.status_code == 200 and "comment" in bare.text and 'role="alert"' in bare.text
    assert await _pending_ids(cc, tokens["look"]) == [rid]
    done = await bob.post("/console/approvals/decide", {"ids": str(rid), "decision": "reject",
                                                        "comment": "not for this role"})
    assert "rejected 1 request(s)" in done.text
    shown = (await cc.api.get(f"/approvals/{rid}", headers=tokens["look"])).json()
    assert (shown["status"], shown["decided_by"], shown["comment"]) == ("rejected", "console:bob", "not for this role")
    await cc.drain()
    assert "Finance" not in graph.groups("F1")
