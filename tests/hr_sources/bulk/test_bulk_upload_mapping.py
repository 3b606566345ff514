"""The default mapping of a SCIM record to HR attributes, and a source's overrides (checked when
the source file is read, with ``file:line``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from provisioner.hr_sources.bulk import mapping
from provisioner.hr_sources.declarations import load_sources
from provisioner.targets.config import ConfigError
from tests.hr_sources.bulk.bulk_requests import CUSTOM, worker


def test_default_mapping_of_microsofts_record():
    record = worker("701984", "Barbara", "Jensen", manager="89607", HireDate="2022-01-10T00:00:00Z",
                    JobCode="TG2", LeaveDate="2027-01-31", Badge="B-17")
    out = mapping.map_record(record, mapping.effective({}))
    assert out.problems == []
    assert out.employee_id == "701984" and out.active is True
    assert out.attributes == {
        "given_name": "Barbara", "family_name": "Jensen", "preferred_name": "Bar", "title": "Tour Guide",
        "department": "Engineering", "cost_center": "4130", "manager_employee_id": "89607",
        "employment_type": "employee", "location": "Redmond", "job_code": "TG2",
        "start_date": date(2022, 1, 10), "end_date": date(2027, 1, 31), "extra": {"Badge": "B-17"}}
    assert out.places["start_date"] == f"{CUSTOM}:HireDate"
    assert out.places["location"] == "addresses[0].locality"


def test_employee_number_when_there_is_no_external_id_and_overrides():
    record = worker("E7", "Ada", "Lovelace")
    del record["externalId"]
    assert mapping.map_record(record, mapping.effective({})).employee_id == "E7"
    out = mapping.map_record(record, mapping.effective({"title": "", "extra.Org": f"{mapping.ENTERPRISE}:organization",
                                                        "given_name": "displayName"}))
    assert "title" not in out.attributes and out.attributes["extra"] == {"Org": "Contoso"}
    assert out.attributes["given_name"] == "Ada Lovelace"


def test_source_file_overrides_are_checked(tmp_path: Path):
    (tmp_path / "workday.yaml").write_text("bulk_upload:\n  attributes:\n    shoe_size: 'urn:x:Shoe'\n"
                                           "    title: 'name..given'\n")
    with pytest.raises(ConfigError) as caught:
        load_sources(tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'workday.yaml'}:")
    assert "shoe_size: not an HR attribute" in problem and "'name..given' is not a SCIM attribute path" in problem
    (tmp_path / "workday.yaml").write_text("bulk_upload:\n  attributes:\n    employee_id: ''\n")
    with pytest.raises(ConfigError, match="employee_id: a path is required"):
        load_sources(tmp_path)
    (tmp_path / "workday.yaml").write_text("bulk_upload:\n  attributes:\n    job_code: '*:Position | title'\n")
    assert load_sources(tmp_path)["workday"].bulk_upload.attributes == {"job_code": "*:Position | title"}
