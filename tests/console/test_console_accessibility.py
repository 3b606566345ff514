"""Every page of the console passes axe-core (no serious or critical violation) in a real browser,
with data on it: an admin visits each GET page the console's routers declare (a pending approval, a
held mass change, a policy rollout, a dead letter, a rejected HR event, leavers with evidence), the
sign-in page (also with an error) and the forbidden page. The list of pages comes from the app's
routes: a new console page without a visit here fails the test."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from provisioner.clock import utcnow
from provisioner.console import PREFIX, routers
from provisioner.reconcile.schedule import scheduled_reconcile
from provisioner.tokens.service import create_token
from tests.change_control.conftest import change_control_config
from tests.change_control.holds.conftest import LOW
from tests.console.browser import BrowserThread, Served, axe_violations
from tests.console.reconcile_support import add_member
from tests.support import event, hire
from tests.targets.scim_helpers import scim_service

# GET routes that are no page: a file download, the OpenID Connect redirect and callback.
NOT_PAGES = {"/console/evidence/download", "/console/sign-in/entra", "/console/auth/callback"}


@pytest.fixture(scope="module")
def browser():
    b = BrowserThread()
    yield b
    b.close()


async def populated(database_url: str, tmp_path: Path):
    """The service with something on every page."""
    policies, targets = change_control_config(tmp_path / "config")
    svc, _ = scim_service(tmp_path, database_url, settings=dict(LOW), policies_dir=policies, targets_dir=targets)
    sales = [f"P{n}" for n in range(10)]
    await svc.send([hire(f"h-{e}", e, "Pat", f"Person{e}", "Sales") for e in sales]
                   + [hire("h-f1", "F1", "Fay", "Ledger", "Finance"), hire("h-l1", "L1", "Leo", "Leaver", "Sales")])
    await svc.drain()  # Fay's Finance group awaits approval
    await svc.send(event("t-l1", "terminate", "L1", immediate=True))  # a leaver, with evidence
    await svc.send(event("u-x9", "terminate", "X9"))  # nobody: rejected
    await svc.drain()
    svc.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest",
                          message="Invalid value specified for property 'jobTitle' of resource 'User'.")
    await svc.send(event("u-f1", "update", "F1", title="Controller"))  # a dead letter
    await svc.drain()
    await svc.send([event(f"t-{e}", "terminate", e) for e in sales[:4]])  # a held mass change
    await svc.drain()
    stranger = svc.sandbox.seed_user("stranger@example.com", display_name="Stan Stranger")
    await add_member(svc, "Sales", stranger)  # drift for the Reconcile page
    rt = svc.runtime
    assert await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, svc.settings) is not None
    with svc.db.transaction() as session:
        tokens = {"admin": create_token(session, "root", {"admin"}), "viewer": create_token(session, "look", {"viewer"})}
    return svc, tokens


def console_pages() -> dict[str, re.Pattern]:
    """Every GET route of the console's routers (path -> its regex), but for the NOT_PAGES."""
    pages = {}
    for router in routers():
        for route in router.routes:
            path = PREFIX + route.path
            if isinstance(route, APIRoute) and "GET" in route.methods and path not in NOT_PAGES:
                pages[path] = compile_path(path)[0]
    return pages


async def test_every_console_page_passes_axe(database_url: str, tmp_path: Path, browser):
    svc, tokens = await populated(database_url, tmp_path)
    served = Served(svc.app)
    with svc.db.read() as session:
        from provisioner.rollouts import repository as rollouts
        rollout_id = rollouts.recent(session, 1, None)[0].id
    today = utcnow().date().isoformat()
    pages = [
        "/console/", "/console", "/console/people?q=person", "/console/people?show=unverified-leavers",
        "/console/people?show=rejected-events", "/console/people/F1", "/console/people/L1",
        "/console/people/NOBODY", "/console/approvals", "/console/approvals?done=approved+1+request(s)",
        "/console/approvals?error=tick+at+least+one+request", "/console/holds", "/console/rollouts",
        f"/console/rollouts/{rollout_id}", f"/console/rollouts/{rollout_id}?target=entra&person=F1",
        "/console/dead-letters", "/console/dead-letters?target=entra", "/console/audit",
        "/console/reconcile", "/console/reconcile?kind=unknown_member",
        "/console/audit?kind=console.signed_in", "/console/audit?verify=true", "/console/evidence",
        f"/console/evidence?from={today}&to={today}", f"/console/evidence/download?from={today}&to=nonsense",
    ]

    def visit(b):
        found: dict[str, list] = {}
        texts: dict[str, str] = {}
        context = b.new_context(base_url=served.url, viewport={"width": 1100, "height": 720})
        page = context.new_page()
        page.goto("/console/sign-in")
        found["/console/sign-in"] = axe_violations(page)
        page.get_by_label("API token").fill("pvt_not-a-token")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("alert").wait_for()
        found["/console/sign-in (refused)"] = axe_violations(page)
        page.get_by_label("API token").fill(tokens["admin"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        visited = []
        for path in pages:
            response = page.goto(path)
            assert response.status in (200, 400, 404), (path, response.status)
            visited.append(page.url)
            found[path] = axe_violations(page)
            texts[path] = page.locator("main").inner_text()
        viewer = b.new_context(base_url=served.url).new_page()
        viewer.goto("/console/sign-in")
        viewer.get_by_label("API token").fill(tokens["viewer"])
        viewer.get_by_role("button", name="Sign in").click()
        viewer.get_by_role("heading", name="Overview").wait_for()
        assert viewer.goto("/console/evidence").status == 403  # the forbidden page
        found["/console/evidence (forbidden)"] = axe_violations(viewer)
        visited += ["/console/sign-in"]
        return found, visited, texts

    try:
        found, visited, texts = await browser.run(visit)
    finally:
        served.close()
        await svc.close()
    paths = {urlsplit(url).path for url in visited}
    missing = [template for template, regex in console_pages().items()
               if not any(regex.match(p) for p in paths)]
    assert len(console_pages()) >= 12 and missing == [], f"console pages without an accessibility check: {missing}"
    assert {path: v for path, v in found.items() if v} == {}
    # the lists have something on them
    assert "Fay Ledger" in texts["/console/approvals"]
    assert "PersonP3" in texts["/console/holds"]
    assert "update_account" in texts["/console/dead-letters"]
    assert "u-x9" in texts["/console/people?show=rejected-events"]
    assert "Pat PersonP0" in texts["/console/people?q=person"]
    assert "The chain verifies" in texts["/console/audit?verify=true"]
    assert "Stan Stranger" in texts["/console/reconcile"]
