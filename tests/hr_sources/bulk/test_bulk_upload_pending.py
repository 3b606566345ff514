"""The person's state the bulk upload types a record by: HR's pending events due by the time the
new event takes effect, without the service's own contract end (a worker with a LeaveDate ahead
is active until then). Through the real endpoint and worker, read back from the Graph sandbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from provisioner.clock import utcnow
from provisioner.intake import contract_end
from provisioner.intake.models import EventStatus, HREvent
from tests.hr_sources.bulk.bulk_requests import bulk, leaver, worker
from tests.hr_sources.bulk.test_bulk_upload import upload


def _pending_contract_ends(svc: Any, employee_id: str) -> list[HREvent]:
    with svc.db.read() as session:
        return list(session.scalars(select(HREvent).where(
            HREvent.employee_id == employee_id, HREvent.source == contract_end.SOURCE,
            HREvent.status == EventStatus.PENDING)))


async def _hired_with_leave_date_ahead(svc: Any, token: str, entra: Any, employee_id: str) -> str:
    leave = str(utcnow().date() + timedelta(days=90))
    resp = await upload(svc, token, bulk(worker(employee_id, "Fay", "Future", LeaveDate=leave)))
    assert resp.json()["Operations"][0]["response"]["type"] == "hire", resp.text
    await svc.drain()
    assert entra.user(employee_id)["accountEnabled"] is True
    assert len(_pending_contract_ends(svc, employee_id)) == 1  # the service's own future terminate
    return leave


async def test_a_change_before_the_contract_end_is_an_update(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    leave = await _hired_with_leave_date_ahead(svc, bulk_token, entra_bulk, "F1")
    resp = await upload(svc, bulk_token, bulk(worker("F1", "Fay", "Future", department="Finance", LeaveDate=leave)))
    assert resp.status_code == 202, resp.text
    assert resp.json()["Operations"][0]["response"]["type"] == "update"  # was 'rehire' (then rejected)
    await svc.drain()
    assert entra_bulk.user("F1")["department"] == "Finance"
    assert entra_bulk.user("F1")["accountEnabled"] is True


async def test_a_leaver_before_the_contract_end_is_terminated_now(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    await _hired_with_leave_date_ahead(svc, bulk_token, entra_bulk, "F2")
    resp = await upload(svc, bulk_token, bulk(leaver("F2")))
    assert resp.status_code == 202, resp.text
    assert resp.json()["Operations"][0]["response"]["type"] == "terminate"  # was 'update' (access kept)
    await svc.drain()
    assert entra_bulk.user("F2")["accountEnabled"] is False
    assert _pending_contract_ends(svc, "F2") == []  # the old contract end is cancelled


async def test_a_later_hr_termination_does_not_count_for_a_change_now(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    assert (await upload(svc, bulk_token, bulk(worker("F3", "Gil", "Goes")))).status_code == 202
    await svc.drain()
    leave = str(utcnow().date() + timedelta(days=30))
    resp = await upload(svc, bulk_token, bulk(leaver("F3", LeaveDate=leave)))
    assert resp.json()["Operations"][0]["response"]["type"] == "terminate"
    await svc.drain()  # the termination waits for the end of LeaveDate
    assert entra_bulk.user("F3")["accountEnabled"] is True
    resp = await upload(svc, bulk_token, bulk(worker("F3", "Gil", "Goes", department="Sales", LeaveDate=leave)))
    assert resp.json()["Operations"][0]["response"]["type"] == "update"
    await svc.drain()
    assert entra_bulk.user("F3")["department"] == "Sales"


async def test_a_rehire_with_a_hire_date_ahead_waits_for_it(bulk_service, bulk_token, entra_bulk):
    svc = bulk_service
    assert (await upload(svc, bulk_token, bulk(worker("F4", "Rae", "Return")))).status_code == 202
    await svc.drain()
    assert (await upload(svc, bulk_token, bulk(leaver("F4")))).status_code == 202
    await svc.drain()
    assert entra_bulk.user("F4")["accountEnabled"] is False
    start = utcnow().date() + timedelta(days=14)
    resp = await upload(svc, bulk_token, bulk(worker("F4", "Rae", "Return", HireDate=str(start))))
    op = resp.json()["Operations"][0]
    assert op["response"]["type"] == "rehire", resp.text
    await svc.drain()
    fate = (await svc.api.get(op["location"], headers={"Authorization": f"Bearer {bulk_token}"})).json()
    assert fate["status"] == "pending" and fate["effective_at"] == f"{start}T00:00:00Z"
    assert entra_bulk.user("F4")["accountEnabled"] is False  # not before the hire date
