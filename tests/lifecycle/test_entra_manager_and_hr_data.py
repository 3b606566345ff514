"""What an identity team expects in Entra ID besides the login: the manager chain, HR dates,
org data and the attribute mapping. HR events in, through the planner, worker and msgraph-sdk,
read back from the Graph sandbox itself (not from the service's records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.clock import utcnow
from provisioner.demo.harness import HR_SOURCE, SandboxedService
from provisioner.intake import fate
from provisioner.targets.config import ConfigError, load_target_file
from tests.support import EntraView, event, hire


async def graph_manager(svc: SandboxedService, user_id: str) -> httpx.Response:
    """``GET /users/{id}/manager`` over Graph's own API."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.sandbox.app),
                                 base_url="http://127.0.0.1/v1.0") as client:
        return await client.get(f"/users/{user_id}/manager",
                                headers={"Authorization": f"Bearer {svc.sandbox_token}"})


async def manager_of(svc: SandboxedService, entra: EntraView, employee_id: str) -> str | None:
    """The employee id of the person's manager in Entra ID, as Graph answers it (None: 404)."""
    resp = await graph_manager(svc, entra.remote_id(employee_id))
    if resp.status_code == 404:
        assert resp.json()["error"]["code"] == "Request_ResourceNotFound"
        return None
    assert resp.status_code == 200, resp.text
    return svc.sandbox.user(resp.json()["id"])["employeeId"]


async def event_fate(svc: SandboxedService, event_id: str) -> dict[str, Any]:
    path = f"/hr/events/{event_id}"
    resp = await svc.api.get(path, headers=fate.signed_read_headers(HR_SOURCE, svc.hr_secret, path))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_report_hired_after_their_manager_gets_the_manager(service, entra: EntraView):
    await service.send(hire("m1", "M1", "Grace", "Hopper", "Engineering"))
    await service.drain()
    await service.send(hire("r1", "R1", "Alan", "Turing", "Engineering", manager_employee_id="M1"))
    await service.drain()
    assert await manager_of(service, entra, "R1") == "M1"
    assert await manager_of(service, entra, "M1") is None
    assert (await event_fate(service, "r1"))["warnings"] == []


async def test_report_hired_before_their_manager_gets_it_when_the_manager_arrives(service, entra: EntraView):
    await service.send(hire("r2", "R2", "Alan", "Turing", "Engineering", manager_employee_id="M2"))
    await service.drain()
    assert entra.user("R2") is not None
    assert await manager_of(service, entra, "R2") is None  # nobody to point at yet
    (warning,) = (await event_fate(service, "r2"))["warnings"]
    assert warning["field"] == "attributes.manager_employee_id" and warning["code"] == "unknown_manager"
    assert warning["value"] == "M2" and warning["resolved"] is False
    assert (await event_fate(service, "r2"))["status"] == "applied"

    await service.send(hire("m2", "M2", "Grace", "Hopper", "Engineering"))
    await service.drain()
    assert await manager_of(service, entra, "R2") == "M2"
    (warning,) = (await event_fate(service, "r2"))["warnings"]
    assert warning["resolved"] is True and "M2" in warning["resolution"]


async def test_report_and_manager_in_one_batch_report_first(service, entra: EntraView):
    await service.send([hire("r3", "R3", "Alan", "Turing", "Sales", manager_employee_id="M3"),
                        hire("r4", "R4", "Joan", "Clarke", "Sales", manager_employee_id="M3"),
                        hire("m3", "M3", "Grace", "Hopper", "Sales")])
    await service.drain()
    assert await manager_of(service, entra, "R3") == "M3"
    assert await manager_of(service, entra, "R4") == "M3"


async def test_manager_change_on_a_mover_and_manager_cleared(service, entra: EntraView):
    await service.send([hire("a", "MA", "Grace", "Hopper", "Sales"), hire("b", "MB", "Ada", "Lovelace", "Sales"),
                        hire("r", "R5", "Alan", "Turing", "Sales", manager_employee_id="MA")])
    await service.drain()
    assert await manager_of(service, entra, "R5") == "MA"
    await service.send(event("r-move", "transfer", "R5", utcnow(), department="Engineering", manager_employee_id="MB"))
    await service.drain()
    assert await manager_of(service, entra, "R5") == "MB"
    assert entra.user("R5")["department"] == "Engineering"
    await service.send(event("r-clear", "update", "R5", utcnow(), manager_employee_id=None))
    await service.drain()
    assert await manager_of(service, entra, "R5") is None
    assert entra.user("R5")["department"] == "Engineering"  # nothing else changed


async def test_managers_of_each_other_do_not_loop(service, entra: EntraView):
    await service.send([hire("c1", "C1", "Grace", "Hopper", "Sales", manager_employee_id="C2"),
                        hire("c2", "C2", "Ada", "Lovelace", "Sales", manager_employee_id="C1")])
    await service.drain(max_wait=20)
    assert await manager_of(service, entra, "C1") == "C2"
    assert await manager_of(service, entra, "C2") == "C1"


async def test_hr_dates_and_org_data_written_then_cleared(service, entra: EntraView):
    await service.send(hire("d1", "D1", "Ada", "Lovelace", "Engineering", location="Berlin", cost_center="CC-42",
                            start_date="2026-01-05", end_date="2027-06-30", employment_type="contractor",
                            extra={"company": "Contoso Research GmbH " + "x" * 60, "division": "R&D"}))
    await service.drain()
    user = entra.user("D1")
    assert user["employeeHireDate"] == "2026-01-05T00:00:00Z"
    assert user["employeeLeaveDateTime"] == "2027-06-30T00:00:00Z"
    assert user["employeeOrgData"] == {"costCenter": "CC-42", "division": "R&D"}
    assert user["companyName"] == ("Contoso Research GmbH " + "x" * 60)[:64]  # Graph's limit
    assert user["employeeType"] == "contractor"
    assert user["officeLocation"] == "Berlin"
    assert user["usageLocation"] == "DE"

    await service.send(event("d2", "update", "D1", utcnow(),
                             end_date=None, cost_center=None, location=None))
    await service.drain()
    user = entra.user("D1")
    assert user["employeeLeaveDateTime"] is None
    assert user["employeeOrgData"] == {"costCenter": None, "division": "R&D"}  # both sent, one cleared
    assert user["officeLocation"] is None
    assert user["employeeHireDate"] == "2026-01-05T00:00:00Z"


@pytest.fixture
async def mapped_service(database_url: str, tmp_path: Path):
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05},
                           target_overrides={"mapping": {
                               "companyName": "Contoso Ltd",
                               "officeLocation": "{extra[office]}",
                               "employeeOrgData.division": "{department}",
                               "jobTitle": "{title} ({job_code})",
                               "employeeType": None}})
    try:
        yield svc
    finally:
        await svc.close()


async def test_mapping_override_in_the_target_file(mapped_service: SandboxedService):
    entra = EntraView(mapped_service)
    await mapped_service.send(hire("o1", "O1", "Ada", "Lovelace", "Engineering", location="Berlin",
                                   title="Engineer", job_code="ENG2", cost_center="CC-1",
                                   extra={"office": "BER-3"}))
    await mapped_service.drain()
    user = entra.user("O1")
    assert user["companyName"] == "Contoso Ltd"
    assert user["officeLocation"] == "BER-3"
    assert user["employeeOrgData"] == {"costCenter": "CC-1", "division": "Engineering"}
    assert user["jobTitle"] == "Engineer (ENG2)"
    assert user["employeeType"] is None  # not written
    assert user["givenName"] == "Ada" and user["surname"] == "Lovelace"  # defaults kept


def test_mapping_errors_are_refused_at_config_load(tmp_path: Path):
    base = ("kind: entra\nauth: {method: static_token, token: {env: T}}\naccounts: {domain: example.com}\n")
    bad_property = tmp_path / "a.yaml"
    bad_property.write_text(base + "mapping:\n  costCentre: '{cost_center}'\n")
    with pytest.raises(ConfigError) as err:
        load_target_file(bad_property)
    assert "unknown Graph user property 'costCentre'" in str(err.value)
    assert f"{bad_property}:4: mapping:" in str(err.value)
    bad_attribute = tmp_path / "b.yaml"
    bad_attribute.write_text(base + "mapping:\n  companyName: '{company}'\n")
    with pytest.raises(ConfigError) as err:
        load_target_file(bad_attribute)
    assert "unknown HR attribute {company}" in str(err.value) and "extra[KEY]" in str(err.value)
    required = tmp_path / "c.yaml"
    required.write_text(base + "mapping:\n  employeeId: null\n")
    with pytest.raises(ConfigError, match="employeeId"):
        load_target_file(required)
