"""The Reconcile page in a real browser (Debian's chromium through Playwright): drift made in the
Graph sandbox over its HTTP API, a scheduled run, the overview's drift count leading to the run,
the drift grouped by kind and narrowed by kind, two items fixed with "Fix selected" and read back
from the sandbox; the page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import re

from provisioner.reconcile.schedule import scheduled_reconcile
from tests.console.browser import shot
from tests.console.reconcile_support import seller_with_drift
from tests.console.test_console_browser import accessible, browser, signed_in, world  # noqa: F401 (fixtures)
from tests.support import EntraView


async def test_an_approver_fixes_selected_drift_from_the_reconcile_page(world, browser):  # noqa: F811
    make, serve = world
    svc, tokens, _ = make(sensitive=False)
    stranger = await seller_with_drift(svc)
    rt = svc.runtime
    report = await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, svc.settings)
    assert report is not None and len(report.drift) == 3
    base = serve(svc).url

    def steps(b):
        page = signed_in(b, base, tokens["alice"])
        assert page.locator("#n-drift").inner_text() == "3"
        page.get_by_role("link", name=re.compile(f"drift items in run {report.run_id}")).click()
        page.get_by_role("heading", name=f"Run {report.run_id}: 3 drift item(s), 3 not fixed").wait_for()
        tables = [t.inner_text() for t in page.get_by_role("table").all()]
        assert any("member_added_elsewhere" in t and "Engineering" in t for t in tables), tables
        accessible(page)
        shot(page, "reconcile")
        page.get_by_label("Kind").select_option("unknown_member")
        page.get_by_role("button", name="Show").click()
        page.get_by_role("table", name=re.compile("unknown_member")).wait_for()
        assert page.get_by_role("table", name=re.compile("member_added_elsewhere")).count() == 0
        assert "Stan Stranger" in page.get_by_role("table", name=re.compile("unknown_member")).inner_text()
        page.get_by_label("Kind").select_option("")
        page.get_by_role("button", name="Show").click()
        page.get_by_label(re.compile("select drift .*member_added_elsewhere Sam Seller.* Engineering")).check()
        page.get_by_label(re.compile("select drift .*member_removed_elsewhere Sam Seller.* Salesforce Users")).check()
        page.get_by_role("button", name="Fix selected").click()
        status = page.get_by_role("status").inner_text()
        heading = page.get_by_role("heading", name=re.compile(f"Run {report.run_id}:")).inner_text()
        accessible(page)
        return status, heading

    status, heading = await browser.run(steps)
    assert status.startswith("2 fixed"), status
    assert heading.endswith("1 not fixed")
    await svc.drain()
    graph = EntraView(svc)
    assert graph.groups("S1") == {"All Staff", "Employees", "Sales", "Salesforce Users"}  # read back
    assert stranger in svc.sandbox.group_member_ids(svc.group_ids["Sales"])  # not selected
