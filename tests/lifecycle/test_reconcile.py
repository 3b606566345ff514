"""Drift reconciliation: changes made in Entra behind the service's back are found, reported to
the audit trail, and with fix re-planned back to what the policies say."""

from __future__ import annotations

import httpx

from provisioner.audit.models import AuditRecord
from provisioner.reconcile.service import reconcile
from tests.support import EntraView, event, hire


async def _setup(service, entra: EntraView) -> str:
    await service.send(hire("d1", "D1", "Drift", "Er", "Engineering"))
    await service.drain()
    rid = entra.remote_id("D1")
    stranger = service.sandbox.seed_user("stranger@example.com", display_name="Stranger")
    service.sandbox.remove_member_directly(service.group_ids["GitHub Users"], rid)
    service.sandbox.add_member_directly(service.group_ids["Finance"], rid)
    service.sandbox.add_member_directly(service.group_ids["Finance"], stranger)
    return stranger


async def test_drift_is_reported_without_changing_anything(service, entra: EntraView):
    stranger = await _setup(service, entra)
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False)
    found = {(d.group, d.kind, d.employee_id, d.login, d.display_name) for d in report.drift}
    assert found == {("GitHub Users", "member_removed_elsewhere", "D1", "drift.er@example.com", "Drift Er"),
                     ("Finance", "member_added_elsewhere", "D1", "drift.er@example.com", "Drift Er"),
                     ("Finance", "unknown_member", None, "stranger@example.com", "Stranger")}
    assert "Finance" in entra.groups("D1")  # report only
    with service.db.transaction() as session:
        [run] = session.query(AuditRecord).filter(AuditRecord.kind == "reconcile.run").all()
        assert run.data["drift"] == 3
    assert stranger in service.sandbox.group_member_ids(service.group_ids["Finance"])


async def test_fix_replans_managed_people_back_to_policy(service, entra: EntraView):
    stranger = await _setup(service, entra)
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    assert report.replanned == 1
    await service.drain()
    assert entra.groups("D1") == {"All Staff", "Employees", "Engineering", "GitHub Users"}
    # An account the service has no link for leaves the managed group (unknown_members: remove).
    assert report.removed == 1
    assert stranger not in service.sandbox.group_member_ids(service.group_ids["Finance"])
    again = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False)
    assert again.drift == []


async def test_account_enabled_behind_the_back_of_a_leaver_is_disabled_again(service, entra: EntraView):
    await service.send(hire("d2", "D2", "Gone", "Ne", "Sales"))
    await service.drain()
    await service.send(event("d3", "terminate", "D2"))
    await service.drain()
    rid = entra.remote_id("D2")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0") as graph:
        resp = await graph.patch(f"/users/{rid}", json={"accountEnabled": True},
                                 headers={"Authorization": f"Bearer {service.sandbox_token}"})
        assert resp.status_code == 204
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    assert [(d.kind, d.employee_id) for d in report.drift] == [("account_enabled_elsewhere", "D2")]
    await service.drain()
    assert entra.user("D2")["accountEnabled"] is False
