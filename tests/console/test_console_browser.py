"""The console in a real browser (Debian's chromium through Playwright) against the whole service
(Graph sandbox, an in-process SCIM server): an approver signs in with an API token, finds a person
and reads their timeline, approves a sensitive grant, releases a held mass change, approves a
policy rollout after reading its diff and replays a dead letter, each read back from the Graph
sandbox; a viewer sees no decision buttons and is refused if posting anyway; a form without its
CSRF token is refused; every page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from provisioner.clock import utcnow
from provisioner.demo.harness import REPO
from provisioner.tokens.service import create_token
from tests.change_control.conftest import change_control_config
from tests.change_control.holds.conftest import LOW
from tests.console.browser import BrowserThread, Served, axe_violations, shot
from tests.policies.test_rollout import assert_after, assert_before, edit_policies, provision
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import scim_service


@pytest.fixture(scope="module")
def browser():
    b = BrowserThread()
    yield b
    b.close()


@pytest.fixture
async def world(database_url: str, tmp_path: Path):
    """make(sensitive=...): the service (Finance sensitive when asked), served over http on localhost,
    with tokens of every role."""
    made = []

    def make(*, sensitive: bool):
        if sensitive:
            policies, targets = change_control_config(tmp_path / "config")
            options = {"policies_dir": policies, "targets_dir": targets}
        else:
            policies = tmp_path / "policies"
            shutil.copytree(REPO / "policies", policies)
            options = {"policies_dir": policies}
        svc, _ = scim_service(tmp_path, database_url, settings=dict(LOW), **options)
        tokens = {}
        with svc.db.transaction() as session:
            for name, scope in (("alice", "approver"), ("look", "viewer"), ("audit", "auditor")):
                tokens[name] = create_token(session, name, {scope})
        made.append((svc, None))
        return svc, tokens, policies

    def serve(svc):
        served = Served(svc.app)
        made.append((None, served))
        return served

    yield make, serve
    for svc, served in reversed(made):
        if served is not None:
            served.close()
        if svc is not None:
            await svc.close()


def signed_in(browser, base: str, token: str):
    context = browser.new_context(base_url=base, viewport={"width": 1100, "height": 720})
    page = context.new_page()
    page.goto("/console/")
    assert page.url.endswith("/console/sign-in")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    return page


def accessible(page) -> None:
    assert axe_violations(page) == [], page.url


async def test_approver_finds_a_person_reads_the_timeline_and_approves_a_sensitive_grant(world, browser):
    make, serve = world
    svc, tokens, _ = make(sensitive=True)
    await svc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await svc.drain()
    graph = EntraView(svc)
    assert "Finance" not in graph.groups("F1")
    base = serve(svc).url

    def steps(b):
        context = b.new_context(base_url=base, viewport={"width": 1100, "height": 720})
        page = context.new_page()
        page.goto("/console/")
        accessible(page)
        shot(page, "sign-in")
        page.get_by_label("API token").fill(tokens["alice"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        assert page.locator("#n-approvals").inner_text() == "1"
        accessible(page)
        shot(page, "overview")
        page.get_by_role("link", name="People", exact=True).click()
        page.get_by_label("Name, employee id or login").fill("ledger")
        page.get_by_role("button", name="Search").click()
        accessible(page)
        page.get_by_role("link", name="Fay Ledger").click()
        page.get_by_role("heading", name="Timeline").wait_for()
        timeline = page.get_by_role("table", name=re.compile("HR events")).inner_text()
        assert "hire h-f1" in timeline and "applied" in timeline
        assert "Finance on entra (policies finance)" in timeline and "pending" in timeline
        assert "Waiting for approval: Finance on entra." in page.get_by_role("region", name="Current plan diff").inner_text()
        accessible(page)
        shot(page, "person")
        page.get_by_role("link", name="Approvals", exact=True).click()
        page.get_by_role("heading", name="Pending approvals").wait_for()
        accessible(page)
        shot(page, "approvals")
        page.get_by_label(re.compile("select request .*Fay Ledger to Finance")).check()
        page.get_by_label(re.compile("Comment")).fill("finance analyst, ticket IT-9")
        page.get_by_role("button", name="Approve selected").click()
        return page.get_by_role("status").inner_text()

    assert await browser.run(steps) == "approved 1 request(s)"
    await svc.drain()
    assert "Finance" in graph.groups("F1")  # read back from the Graph sandbox


async def test_approver_releases_a_held_mass_change(world, browser):
    make, serve = world
    svc, tokens, _ = make(sensitive=False)
    people = [f"P{n}" for n in range(10)]
    await svc.send([hire(f"h-{e}", e, "Pat", f"Person{e}", "Sales") for e in people])
    await svc.drain()
    await svc.send([event(f"t-{e}", "terminate", e) for e in people[:5]])  # 50%: held
    await svc.drain()
    entra = EntraView(svc)
    assert all(entra.user(e)["accountEnabled"] for e in people[:5])
    base = serve(svc).url

    def steps(b):
        page = signed_in(b, base, tokens["alice"])
        page.get_by_role("link", name="Holds", exact=True).click()
        page.get_by_role("heading", name=re.compile("Hold set .*hr_termination on entra")).wait_for()
        assert "PersonP4" in page.get_by_role("table", name="What would happen if released").first.inner_text()
        accessible(page)
        shot(page, "holds")
        released = []
        while page.get_by_role("button", name=re.compile("Release hold set")).count():  # entra's and the wiki's
            release = page.get_by_role("button", name=re.compile("Release hold set")).first
            release.locator("xpath=..").get_by_label(re.compile("Comment")).fill("HR confirmed the layoff")
            release.click()
            released.append(page.get_by_role("status").inner_text())
        return released

    released = await browser.run(steps)
    assert len(released) == 2 and all(r.endswith("released") for r in released), released
    await svc.drain()
    assert not any(entra.user(e)["accountEnabled"] for e in people[:5])  # read back from the sandbox


async def test_approver_reads_a_rollout_diff_and_approves_it(world, browser):
    make, serve = world
    svc, tokens, policies = make(sensitive=False)
    await provision(svc)
    edit_policies(policies)
    result = await svc.runtime.reload_policies("sighup")
    assert result.outcome == "held"
    await svc.drain()
    assert_before(EntraView(svc))
    base = serve(svc).url

    def steps(b):
        page = signed_in(b, base, tokens["alice"])
        page.get_by_role("link", name="Rollouts", exact=True).click()
        accessible(page)
        page.get_by_role("link", name=f"Rollout {result.rollout_id}").click()
        entra = page.get_by_role("table", name=re.compile("in entra"))
        assert "Grace Hopper (S2)" in entra.inner_text()
        page.get_by_label("Employee id").fill("S2")
        page.get_by_role("button", name="Narrow the diff").click()
        gains = page.get_by_role("heading", name="What S2 gains and loses").locator("xpath=following-sibling::ul[1]")
        assert "−Sales" in gains.inner_text() and "−Salesforce Users" in gains.inner_text()
        accessible(page)
        shot(page, "rollout")
        page.get_by_label(re.compile("Comment")).first.fill("reviewed in CAB")
        page.get_by_role("button", name=f"Approve rollout {result.rollout_id}").click()
        return page.get_by_role("status").inner_text()

    assert "approved" in await browser.run(steps)
    await svc.drain()
    assert_after(EntraView(svc))


async def test_approver_replays_a_dead_letter(world, browser):
    make, serve = world
    svc, tokens, _ = make(sensitive=False)
    await svc.send(hire("p1", "P1", "Perma", "Nent", "Finance"))
    await svc.drain()
    svc.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest",
                          message="Invalid value specified for property 'jobTitle' of resource 'User'.")
    await svc.send(event("p2", "update", "P1", title="Controller"))
    await svc.drain()
    entra = EntraView(svc)
    assert entra.user("P1").get("jobTitle") != "Controller"
    base = serve(svc).url

    def steps(b):
        page = signed_in(b, base, tokens["alice"])
        assert page.locator("#n-dead").inner_text() == "1"
        page.get_by_role("link", name=re.compile("dead letters")).click()
        table = page.get_by_role("table", name=re.compile("entra: bad_request"))
        assert "update_account" in table.inner_text()
        accessible(page)
        shot(page, "dead-letters")
        page.get_by_label(re.compile("select operation")).check()
        page.get_by_role("button", name="Replay selected").click()
        return page.get_by_role("status").inner_text()

    assert await browser.run(steps) == "replayed 1 operation(s)"
    await svc.drain()
    assert entra.user("P1")["jobTitle"] == "Controller"


async def test_a_viewer_sees_no_decisions_and_forms_need_their_csrf_token(world, browser):
    make, serve = world
    svc, tokens, _ = make(sensitive=True)
    await svc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await svc.drain()
    base = serve(svc).url

    def steps(b):
        page = signed_in(b, base, tokens["look"])
        page.get_by_role("link", name="Approvals", exact=True).click()
        assert "Fay Ledger" in page.get_by_role("table").inner_text()
        assert page.get_by_role("button", name=re.compile("Approve|Reject")).count() == 0
        assert page.get_by_role("checkbox").count() == 0
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")  # the sign-out form's
        posted = page.request.post("/console/approvals/decide", form={"csrf_token": csrf, "ids": "1",
                                                                      "decision": "approve"})
        viewer = (posted.status, "may read but not decide" in posted.text())
        page.goto("/console/people?show=rejected-events")
        accessible(page)
        page.goto("/console/people?show=unverified-leavers")
        accessible(page)
        approver = signed_in(b, base, tokens["alice"])
        bare = approver.request.post("/console/approvals/decide", form={"ids": "1", "decision": "approve"})
        return viewer, (bare.status, "CSRF" in bare.text())

    assert await browser.run(steps) == ((403, True), (403, True))
    reply = await svc.api.get("/approvals", headers={"Authorization": f"Bearer {tokens['look']}"})
    assert [r["status"] for r in reply.json()["requests"]] == ["pending"]  # nothing was decided


async def test_an_auditor_downloads_evidence_that_matches_its_manifest_and_verifies_the_audit_trail(world, browser):
    make, serve = world
    svc, tokens, _ = make(sensitive=False)
    await svc.send(hire("h-l1", "L1", "Leo", "Leaver", "Sales"))
    await svc.drain()
    await svc.send(event("t-l1", "terminate", "L1", immediate=True))
    await svc.drain()
    base = serve(svc).url
    today = utcnow().date().isoformat()

    def steps(b):
        page = signed_in(b, base, tokens["audit"])
        page.get_by_role("link", name="Evidence", exact=True).click()
        page.get_by_role("heading", name="Revocation evidence").wait_for()
        page.get_by_label("From (date)").fill(today)
        page.get_by_label("To (date, included)").fill(today)
        page.get_by_role("button", name="Show leavers").click()
        leavers = page.get_by_role("table", name="Leavers and their systems")
        listed = {system: leavers.get_by_role("row").filter(has_text=system).inner_text()
                  for system in ("entra", "wiki")}
        page.get_by_label("System").select_option("entra")  # the download narrowed to one system
        accessible(page)
        shot(page, "evidence")
        files = {}
        for button in ("Download evidence", "Download manifest"):
            with page.expect_download() as info:
                page.get_by_role("button", name=button).click()
            files[button] = (info.value.suggested_filename, Path(info.value.path()).read_bytes())
        page.get_by_role("link", name="Audit", exact=True).click()
        page.get_by_role("button", name="Verify the chain").click()
        verified = page.get_by_role("status").inner_text()
        trail = page.get_by_role("table").inner_text()
        accessible(page)
        shot(page, "audit")
        return files, verified, trail, listed

    files, verified, trail, listed = await browser.run(steps)
    assert all("verified" in row and "not verified" not in row for row in listed.values()), listed
    assert "Leo Leaver (L1)" in listed["entra"]
    (name, body), (manifest_name, manifest_bytes) = files["Download evidence"], files["Download manifest"]
    manifest = json.loads(manifest_bytes)
    assert name.endswith(".csv") and manifest_name.endswith(".csv.manifest.json")
    assert hashlib.sha256(body).hexdigest() == manifest["sha256"] and manifest["bytes"] == len(body)
    assert manifest["leavers"] == 1 and b"L1" in body
    assert manifest["filters"] == {"target": "entra"} and b",entra," in body and b",wiki," not in body
    assert verified.startswith("The chain verifies")
    assert "console.evidence.downloaded" in trail and "console:audit" in trail


async def test_an_approver_signs_in_with_entra_id_through_msal(world, browser):
    """The sign-in a real tenant uses: the console (msal, authorization code flow with PKCE) sends
    the browser to the sandbox OpenID Connect authority over HTTPS, a person is picked there, and
    the callback signs them in with the roles of their token."""
    from provisioner.sandbox.oidc.serve import running_authority
    from provisioner.sandbox.oidc.users import SandboxClient

    make, serve = world
    svc, _, _ = make(sensitive=False)
    served = serve(svc)
    client = SandboxClient("console-browser", (f"{served.url}/console/auth/callback",), "console-browser-secret")
    with running_authority() as authority:
        settings = svc.app.state.settings
        svc.app.state.settings = type(settings)(**{**settings.model_dump(), **authority.console_settings(client)})
        svc.app.state.console_entra = None

        def steps(b):
            # The sandbox authority's certificate comes from a CA made for the test run.
            context = b.new_context(base_url=served.url, ignore_https_errors=True,
                                    viewport={"width": 1100, "height": 720})
            page = context.new_page()
            page.goto("/console/sign-in")
            accessible(page)
            page.get_by_role("link", name="Sign in with Entra ID").click()
            page.get_by_role("heading", name="Pick an account").wait_for()
            assert page.url.startswith(authority.authority)
            accessible(page)  # the sandbox authority's picker, which the demo's users see too
            page.locator('button[data-username="april.approver@sandbox.example"]').click()
            page.get_by_role("heading", name="Overview").wait_for()
            accessible(page)
            return page.content()

        html = await browser.run(steps)
    assert "april.approver@sandbox.example" in html
