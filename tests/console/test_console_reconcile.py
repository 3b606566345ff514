"""The console's Reconcile page over HTTP: drift made in the Graph sandbox behind the service's
back, a run started from the console (admins), the drift grouped by kind, "fix selected"
(approvers) read back from the sandbox, the overview's last run, a person's timeline; viewers
see no controls and are refused; every action audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.reconcile.models import ReconcileRun
from provisioner.reconcile.schedule import scheduled_reconcile
from tests.console.conftest import bearer
from tests.console.reconcile_support import add_member, items, seller_with_drift
from tests.support import event, hire

RUN = re.compile(r"run (\d+): (\d+) drift item")


async def _run_from_console(c) -> tuple[int, str]:
    page = await c.post("/console/reconcile/run")
    assert page.status_code == 200, page.text
    found = RUN.search(page.text)
    assert found, page.text
    return int(found.group(1)), page.text


async def test_an_admin_runs_reconcile_and_an_approver_fixes_selected_drift(cc, tokens, console, graph):
    stranger = await seller_with_drift(cc)
    root = console()
    await root.sign_in(bearer(tokens["root"]))
    run_id, page = await _run_from_console(root)
    assert f"run {run_id}: 3 drift item(s)" in page
    # Grouped by kind, each group with its count.
    assert "member_added_elsewhere: In a group the service did not grant (1)" in page
    assert "member_removed_elsewhere: Removed from a group the service granted (1)" in page
    assert "unknown_member: Accounts the service does not know, in a managed group (1)" in page
    assert "Stan Stranger &lt;stranger@example.com&gt;" in page
    with cc.db.read() as session:
        assert session.get(ReconcileRun, run_id).trigger == "console:root"
    stored = items(cc, run_id)
    assert set(stored) == {("member_added_elsewhere", "Engineering"), ("member_removed_elsewhere", "Salesforce Users"),
                           ("unknown_member", "Sales")}

    # Narrowed by kind: only that group's table.
    narrowed = await root.get("/console/reconcile", params={"run": run_id, "kind": "unknown_member"})
    assert "unknown_member: Accounts" in narrowed.text and "member_added_elsewhere: In a group" not in narrowed.text

    # The overview: the last run and its drift count, linking to the run.
    overview = await root.get("/console/")
    assert f'<a href="/console/reconcile?run={run_id}"><span class="n" id="n-drift">3</span>' in overview.text

    # An approver fixes two of the three (the person's added and removed memberships).
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    chosen = [stored[("member_added_elsewhere", "Engineering")].id,
              stored[("member_removed_elsewhere", "Salesforce Users")].id]
    done = await alice.post("/console/reconcile/fix", {"run_id": str(run_id), "ids": [str(i) for i in chosen]})
    assert done.status_code == 200 and "2 fixed" in done.text, done.text
    await cc.drain()
    assert graph.groups("S1") == {"All Staff", "Employees", "Sales", "Salesforce Users"}  # read back
    assert stranger in cc.sandbox.group_member_ids(cc.group_ids["Sales"])  # not selected: left alone
    after = items(cc, run_id)
    for key in (("member_added_elsewhere", "Engineering"), ("member_removed_elsewhere", "Salesforce Users")):
        assert after[key].fixed_by == "console:alice" and after[key].outcome.startswith("fixed in run ")
    assert after[("unknown_member", "Sales")].fixed_at is None

    # Fixing the same items again: reported as already fixed, nothing re-done.
    again = await alice.post("/console/reconcile/fix", {"run_id": str(run_id), "ids": [str(i) for i in chosen]})
    assert "0 fixed, 2 already fixed" in again.text, again.text

    # The person's timeline shows the drift items.
    person = await alice.get("/console/people/S1")
    assert "member_added_elsewhere in entra (Engineering)" in person.text and "fixed by console:alice" in person.text

    with cc.db.read() as session:
        records = list(session.scalars(select(AuditRecord).where(AuditRecord.kind.in_(
            ["console.reconcile.fix", "console.reconcile.run", "reconcile.items_fixed", "reconcile.run"]))))
    kinds = [(r.kind, r.data.get("by") or r.data.get("trigger")) for r in records]
    assert ("console.reconcile.run", "console:root") in kinds and ("console.reconcile.fix", "console:alice") in kinds
    assert ("reconcile.items_fixed", "console:alice") in kinds and ("reconcile.run", "console:alice") in kinds


async def test_the_removal_limit_holds_a_selected_unknown_member(cc, tokens, console):
    stranger = await seller_with_drift(cc)
    cc.app.state.settings = cc.settings.model_copy(update={"reconcile_max_removals": 0})
    root = console()
    await root.sign_in(bearer(tokens["root"]))
    run_id, _ = await _run_from_console(root)
    item = items(cc, run_id)[("unknown_member", "Sales")]
    done = await root.post("/console/reconcile/fix", {"run_id": str(run_id), "ids": str(item.id)})
    assert "0 fixed, 1 not fixed" in done.text and "PROVISIONER_RECONCILE_MAX_REMOVALS" in done.text, done.text
    assert stranger in cc.sandbox.group_member_ids(cc.group_ids["Sales"])
    assert items(cc, run_id)[("unknown_member", "Sales")].fixed_at is None


async def test_a_viewer_sees_no_controls_and_is_refused(cc, tokens, console):
    await seller_with_drift(cc)
    root = console()
    await root.sign_in(bearer(tokens["root"]))
    run_id, _ = await _run_from_console(root)
    item = items(cc, run_id)[("member_added_elsewhere", "Engineering")]
    for name in ("look", "audit"):
        viewer = console()
        await viewer.sign_in(bearer(tokens[name]))
        page = await viewer.get("/console/reconcile")
        assert "member_added_elsewhere: In a group" in page.text
        assert "Fix selected" not in page.text and 'type="checkbox"' not in page.text
        assert "Run reconcile now" not in page.text
        refused = await viewer.post("/console/reconcile/fix", {"run_id": str(run_id), "ids": str(item.id)})
        assert refused.status_code == 403 and "may read but not decide" in refused.text
        assert (await viewer.post("/console/reconcile/run")).status_code == 403
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    assert "Run reconcile now" not in (await alice.get("/console/reconcile")).text  # admins only
    refused = await alice.post("/console/reconcile/run")
    assert refused.status_code == 403 and "not an admin" in refused.text
    bare = await alice.post("/console/reconcile/fix", {"run_id": str(run_id), "ids": str(item.id)}, csrf=False)
    assert bare.status_code == 403 and "CSRF" in bare.text
    assert items(cc, run_id)[("member_added_elsewhere", "Engineering")].fixed_at is None  # nothing done
    with cc.db.read() as session:
        assert session.scalar(select(ReconcileRun.id).order_by(ReconcileRun.id.desc()).limit(1)) == run_id


async def test_bad_input_is_named(cc, tokens, console):
    alice = console()
    await alice.sign_in(bearer(tokens["alice"]))
    empty = await alice.get("/console/reconcile")
    assert "No reconciliation has run yet." in empty.text
    missing = await alice.get("/console/reconcile", params={"run": 99})
    assert missing.status_code == 404 and "no reconcile run 99" in missing.text
    nothing = await alice.post("/console/reconcile/fix", {"run_id": "99"})
    assert 'role="alert"' in nothing.text and "no reconcile run 99" in nothing.text
    bad = await alice.post("/console/reconcile/fix", {"run_id": "x"})
    assert bad.status_code == 400 and "run_id" in bad.text  # problem+json naming the field


async def test_a_leavers_timeline_shows_the_revocation_incident(cc, tokens, console, graph):
    await cc.send(hire("h-l1", "L1", "Leo", "Leaver", "Sales"))
    await cc.drain()
    await cc.send(event("t-l1", "terminate", "L1", immediate=True))
    await cc.drain()
    assert graph.groups("L1") == set()
    await add_member(cc, "Sales", graph.remote_id("L1"))  # access back behind the service's back
    rt = cc.runtime
    report = await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, cc.settings)
    assert report.incidents == 1
    look = console()
    await look.sign_in(bearer(tokens["look"]))
    person = await look.get("/console/people/L1")
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", person.text, re.S) if "Sales" in r]
    assert any("revocation incident" in r and "member_added_elsewhere in entra (Sales), by reconcile" in r
               and "open" in r for r in rows), rows
    assert any(">drift<" in r and f"reconcile run {report.run_id}" in r and "not fixed" in r for r in rows), rows
