"""``POST /hr/bulkUpload``: Microsoft's documented BulkRequest shape through the real app, the
worker run, and what landed read back from the Graph sandbox; idempotent repeats; the fate read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.identities import repository as identities
from provisioner.intake.models import HREvent
from tests.hr_sources.bulk.bulk_requests import SOURCE, bulk, leaver, worker
from tests.support import EntraView

SCIM = "application/scim+json"


async def upload(svc: SandboxedService, token: str, request: dict[str, Any],
                 content_type: str = SCIM) -> httpx.Response:
    return await svc.api.post("/hr/bulkUpload", json=request,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})


def stored(svc: SandboxedService) -> int:
    with svc.db.read() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


async def manager_of(svc: SandboxedService, entra: EntraView, employee_id: str) -> str | None:
    """The employee id of the person's manager, as Graph's own API answers it."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0") as client:
        resp = await client.get(f"/users/{entra.remote_id(employee_id)}/manager",
                                headers={"Authorization": f"Bearer {svc.sandbox_token}"})
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return svc.sandbox.user(resp.json()["id"])["employeeId"]


async def test_microsofts_example_lands_in_the_sandbox(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    # A first request: the leaver-to-be joins (so there is someone to terminate later).
    first = await upload(svc, bulk_token, bulk(worker("701900", "Leah", "Leaver", department="Finance")))
    assert first.status_code == 202, first.text
    await svc.drain()
    assert entra_bulk.user("701900")["accountEnabled"] is True

    # Microsoft's shape: joiners with a manager and custom extension attributes, a leaver active: false.
    request = bulk(worker("89607", "John", "Smith", HireDate="2021-05-01", JobCode="MGR1", Site="DE-BER-1"),
                   worker("701984", "Barbara", "Jensen", manager="89607", HireDate="2022-01-10",
                          JobCode="TG2", WorkerType="Contractor", Badge="B-17"),
                   leaver("701900", LeaveDate=str(utcnow().date() - timedelta(days=1))))
    resp = await upload(svc, bulk_token, request)
    assert resp.status_code == 202, resp.text
    assert resp.headers["content-type"].startswith(SCIM)
    assert resp.headers["location"] == f"/hr/sources/{SOURCE}/events"
    answer = resp.json()
    assert answer["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    ops = answer["Operations"]
    assert [o["bulkId"] for o in ops] == [o["bulkId"] for o in request["Operations"]]
    assert [o["status"] for o in ops] == ["202"] * 3
    assert [(o["response"]["type"], o["response"]["employee_id"]) for o in ops] == [
        ("hire", "89607"), ("hire", "701984"), ("terminate", "701900")]
    await svc.drain()

    # What Entra ID (the Graph sandbox) holds now.
    barbara, john, leah = (entra_bulk.user(e) for e in ("701984", "89607", "701900"))
    assert barbara["givenName"] == "Bar" and barbara["surname"] == "Jensen"  # nickName: the preferred name
    assert barbara["employeeId"] == "701984" and barbara["department"] == "Engineering"
    assert barbara["accountEnabled"] is True and john["accountEnabled"] is True
    assert await manager_of(svc, entra_bulk, "701984") == "89607"
    assert leah["accountEnabled"] is False
    assert "Managers" in entra_bulk.groups("89607")  # job_code MGR1 from the custom extension
    assert "Berlin Office" in entra_bulk.groups("89607")  # location from the source's own mapping
    assert "Contractors" in entra_bulk.groups("701984")  # WorkerType overrides userType for this source
    with svc.db.read() as session:
        person = identities.by_employee_id(session, "701984")
        assert person.extra == {"Badge": "B-17"}  # an unmapped custom attribute
        assert str(person.start_date) == "2022-01-10" and person.job_code == "TG2"
        assert person.employment_type == "contractor" and person.cost_center == "4130"

    # Each record's fate, read with the same token where the answer said.
    headers = {"Authorization": f"Bearer {bulk_token}"}
    for op in ops:
        fate = await svc.api.get(op["location"], headers=headers)
        assert fate.status_code == 200, fate.text
        assert fate.json()["status"] == "applied"
        assert fate.json()["event_id"] == op["response"]["event_id"]
    listed = await svc.api.get(resp.headers["location"], headers=headers)
    assert [e["employee_id"] for e in listed.json()["events"]] == ["701900", "89607", "701984", "701900"]


async def test_a_repeat_is_idempotent_and_a_change_back_is_new(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    request = bulk(worker("E1", "Ada", "Lovelace"), worker("E2", "Alan", "Turing", manager="E1"))
    first = await upload(svc, bulk_token, request)
    assert first.status_code == 202, first.text
    ids = [o["response"]["event_id"] for o in first.json()["Operations"]]
    await svc.drain()
    again = await upload(svc, bulk_token, request)  # after processing: the people are known now
    assert again.status_code == 202, again.text
    assert [o["response"]["event_id"] for o in again.json()["Operations"]] == ids
    assert [o["response"]["duplicate"] for o in again.json()["Operations"]] == [True, True]
    assert stored(svc) == 2

    moved = await upload(svc, bulk_token, bulk(worker("E2", "Alan", "Turing", department="Finance")))
    back = await upload(svc, bulk_token, bulk(worker("E2", "Alan", "Turing", manager="E1")))
    assert moved.json()["Operations"][0]["response"]["type"] == "update"
    back_id = back.json()["Operations"][0]["response"]["event_id"]
    assert back_id not in ids and back.json()["Operations"][0]["response"]["duplicate"] is False
    await svc.drain()
    assert entra_bulk.user("E2")["department"] == "Engineering"
    assert stored(svc) == 4


async def test_rehire_of_a_leaver(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    assert (await upload(svc, bulk_token, bulk(worker("R1", "Rita", "Return")))).status_code == 202
    await svc.drain()
    assert entra_bulk.user("R1")["accountEnabled"] is True
    assert (await upload(svc, bulk_token, bulk(leaver("R1")))).status_code == 202
    await svc.drain()
    assert entra_bulk.user("R1")["accountEnabled"] is False
    resp = await upload(svc, bulk_token, bulk(worker("R1", "Rita", "Return", department="Sales")))
    assert resp.json()["Operations"][0]["response"]["type"] == "rehire"
    await svc.drain()
    assert entra_bulk.user("R1")["accountEnabled"] is True


async def test_the_readme_curl_example_is_accepted(bulk_service, bulk_token):
    """The request of README's curl example, as written there."""
    import json
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("## HR sources: SCIM bulk upload"):]
    example = section[section.index("<<'JSON'\n") + len("<<'JSON'\n"):section.index("\nJSON\n")]
    resp = await bulk_service.api.post("/hr/bulkUpload", content=example.encode(), headers={
        "Authorization": f"Bearer {bulk_token}", "Content-Type": "application/scim+json"})
    assert resp.status_code == 202, resp.text
    assert [(o["response"]["employee_id"], o["response"]["type"]) for o in resp.json()["Operations"]] == [
        ("701984", "hire"), ("701900", "terminate")]
    assert json.loads(example)["failOnErrors"] is None
    await bulk_service.drain()
    headers = {"Authorization": f"Bearer {bulk_token}"}
    fates = [(await bulk_service.api.get(o["location"], headers=headers)).json() for o in resp.json()["Operations"]]
    assert fates[0]["status"] == "applied"
    assert fates[0]["warnings"][0]["code"] == "unknown_manager"  # 89607 is not known here
    if str(utcnow().date()) <= "2026-12-31":  # LeaveDate ahead: the termination waits for the end of that day
        assert fates[1]["status"] == "pending" and fates[1]["effective_at"] == "2027-01-01T00:00:00Z"
    else:  # past: effective now, and nobody 701900 is known here
        assert fates[1]["status"] == "rejected" and "unknown employee" in fates[1]["reason"]
    listed = await bulk_service.api.get(f"/hr/sources/{SOURCE}/events?status=nope", headers=headers)
    assert listed.status_code == 400 and listed.json()["errors"][0]["field"] == "query.status"
