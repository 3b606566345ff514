"""Drift made in the Graph sandbox behind the service's back, over Graph's own HTTP API (as an
admin in the Entra portal would), and what the stored runs say."""

from __future__ import annotations

import httpx

from provisioner.demo.harness import SandboxedService
from provisioner.reconcile.models import ReconcileDrift
from tests.support import EntraView, hire


async def graph_call(svc: SandboxedService, method: str, path: str, body: dict | None = None) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0") as client:
        resp = await client.request(method, path, json=body,
                                    headers={"Authorization": f"Bearer {svc.sandbox_token}"})
        assert resp.status_code == 204, resp.text


async def add_member(svc: SandboxedService, group: str, remote_id: str) -> None:
    await graph_call(svc, "POST", f"/groups/{svc.group_ids[group]}/members/$ref",
                     {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{remote_id}"})


async def remove_member(svc: SandboxedService, group: str, remote_id: str) -> None:
    await graph_call(svc, "DELETE", f"/groups/{svc.group_ids[group]}/members/{remote_id}/$ref")


async def seller_with_drift(svc: SandboxedService) -> str:
    """Sam Seller (S1, Sales) put in Engineering and taken out of Salesforce Users by hand, and a
    stranger's account added to Sales; returns the stranger's id."""
    await svc.send(hire("h-s1", "S1", "Sam", "Seller", "Sales"))
    await svc.drain()
    graph = EntraView(svc)
    assert graph.groups("S1") == {"All Staff", "Employees", "Sales", "Salesforce Users"}
    rid = graph.remote_id("S1")
    await add_member(svc, "Engineering", rid)
    await remove_member(svc, "Salesforce Users", rid)
    stranger = svc.sandbox.seed_user("stranger@example.com", display_name="Stan Stranger")
    await add_member(svc, "Sales", stranger)
    assert graph.groups("S1") == {"All Staff", "Employees", "Sales", "Engineering"}
    return stranger


def items(svc: SandboxedService, run_id: int) -> dict[tuple[str, str | None], ReconcileDrift]:
    """A stored run's items by (kind, group)."""
    with svc.db.read() as session:
        rows = session.query(ReconcileDrift).filter(ReconcileDrift.run_id == run_id).all()
    return {(r.kind, r.group): r for r in rows}
