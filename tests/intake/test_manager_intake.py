"""A person named as their own manager is refused at intake (HTTP: RFC 7807 naming the field;
CSV import: the line and the field); an unknown manager is accepted with a warning on the
event's fate (`provisioner events show`)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from provisioner.intake.models import HREvent
from tests.support import event, hire


def stored(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


async def test_own_manager_is_refused_over_http_naming_the_field(service):
    resp = await service.send(hire("s1", "S1", "Ada", "Lovelace", "Engineering", manager_employee_id="S1"))
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    (error,) = resp.json()["errors"]
    assert error["field"] == "attributes.manager_employee_id"
    assert "cannot be their own manager" in error["message"]
    batch = await service.send([hire("s2", "S2", "Ada", "Lovelace", "Engineering"),
                                event("s3", "update", "S2", manager_employee_id="S2")])
    assert batch.status_code == 400
    assert [e["field"] for e in batch.json()["errors"]] == ["events.1.attributes.manager_employee_id"]
    assert stored(service) == 0  # nothing half-stored


def test_own_manager_is_refused_by_the_csv_import(service, cli, tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text("employee_id,given_name,family_name,manager_employee_id\n"
                    "C1,Ada,Lovelace,\n"
                    "C2,Alan,Turing,C2\n", encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:3: attributes.manager_employee_id: 'C2' cannot be their own manager" in result.output
    assert f"{path}:2:" not in result.output
    assert stored(service) == 0


async def test_unknown_manager_is_a_warning_shown_by_events_show(service, cli):
    resp = await service.send(hire("u1", "U1", "Ada", "Lovelace", "Engineering", manager_employee_id="NOBODY"))
    assert resp.status_code == 202
    await service.drain()
    result = cli("events", "show", "u1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["status"] == "applied"
    (warning,) = shown["warnings"]
    assert warning["code"] == "unknown_manager" and warning["value"] == "NOBODY" and warning["resolved"] is False
    text = cli("events", "show", "u1")
    assert "warning (open) attributes.manager_employee_id" in text.output
    listed = json.loads(cli("events", "list", "--json").output)
    assert listed[0]["warnings"][0]["value"] == "NOBODY"
    assert cli("events", "show", "nope").exit_code != 0
