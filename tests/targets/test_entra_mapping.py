"""The Entra attribute mapping and manager requests as Graph bodies (pure: no I/O); the same
bodies reach the sandbox in tests/lifecycle/test_entra_manager_and_hr_data.py."""

from __future__ import annotations

from provisioner.targets.contract import AccountSpec, OpKind, Outcome, TargetOp
from provisioner.targets.entra import batching, mapping

HR = {"employee_id": "E1", "given_name": "Ada", "family_name": "Lovelace", "display_name": "Ada Lovelace",
      "department": "Engineering", "title": "Engineer", "location": "Berlin", "cost_center": "CC-1",
      "employment_type": "employee", "start_date": "2026-03-01", "end_date": None, "job_code": "ENG",
      "extra": {"company": "C" * 70, "division": "R&D"}}


def spec(**hr) -> AccountSpec:
    return AccountSpec(employee_id="E1", login="ada@example.com", mail_nickname="ada", display_name="Ada Lovelace",
                       email="ada@example.com", hr={**HR, **hr})


def obj_url(object_id: str) -> str:
    return f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"


def test_default_mapping_on_create_leaves_out_what_has_no_value():
    body = batching.create_user_body(spec(), usage_location="DE", password="x")
    assert body["employeeHireDate"] == "2026-03-01T00:00:00Z"
    assert "employeeLeaveDateTime" not in body
    assert body["employeeOrgData"] == {"costCenter": "CC-1", "division": "R&D"}
    assert body["companyName"] == "C" * 64
    assert (body["givenName"], body["surname"], body["jobTitle"], body["officeLocation"]) == (
        "Ada", "Lovelace", "Engineer", "Berlin")
    assert (body["employeeType"], body["usageLocation"], body["employeeId"]) == ("employee", "DE", "E1")
    assert body["userPrincipalName"] == "ada@example.com" and body["mailNickname"] == "ada"


def test_update_sends_null_for_what_hr_cleared_and_org_data_whole():
    body = batching.update_user_body(spec(cost_center=None, location=None, extra={}), usage_location=None)
    assert body["employeeOrgData"] == {"costCenter": None, "division": None}
    assert body["officeLocation"] is None and body["companyName"] is None and body["employeeLeaveDateTime"] is None
    assert "usageLocation" not in body and "userPrincipalName" not in body
    assert body["displayName"] == "Ada Lovelace" and body["employeeId"] == "E1"


def test_override_mapping_renders_literals_extra_and_drops_null():
    effective = mapping.effective_mapping({"companyName": "Contoso", "jobTitle": "{title} ({job_code})",
                                           "employeeType": None}, "GB")
    body = batching.update_user_body(spec(), mapping=effective)
    assert body["companyName"] == "Contoso" and body["jobTitle"] == "Engineer (ENG)"
    assert "employeeType" not in body and body["usageLocation"] == "GB"


def test_manager_requests_in_a_batch():
    ops = [TargetOp(1, OpKind.SET_MANAGER, account_id="u1", manager_id="m1"),
           TargetOp(2, OpKind.CLEAR_MANAGER, account_id="u2"),
           TargetOp(3, OpKind.SET_MANAGER, account_id="u3")]
    plan = batching.plan_writes(ops, directory_object_url=obj_url, base_url="http://127.0.0.1/v1.0")
    put, delete = plan.subs
    assert (put.method, put.url, put.body) == ("PUT", "/users/u1/manager/$ref",
                                               {"@odata.id": "http://127.0.0.1/v1.0/users/m1"})
    assert (delete.method, delete.url, delete.body) == ("DELETE", "/users/u2/manager/$ref", None)
    (refused,) = plan.results
    assert refused.op_id == 3 and refused.outcome == Outcome.BAD_REQUEST
