"""`provisioner import --snapshot`: a full extract names who is employed; the people the service
knows as employed who are missing from it are reported and, on request, terminated (idempotently,
guarded against a truncated file). And a CSV import names every bad row, not only the first."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from provisioner.clock import utcnow
from provisioner.intake.models import HREvent
from provisioner.settings import get_settings
from tests.support import EntraView, event, hire

HEADER = "employee_id,given_name,family_name,department,employment_type\n"
PEOPLE = {"N1": "Ada,Lovelace", "N2": "Alan,Turing", "N3": "Grace,Hopper"}


async def provision(service) -> None:
    """Three employed people with accounts in the sandbox, and one leaver (never "missing")."""
    await service.send([hire(f"h-{emp}", emp, *names.split(","), "Sales") for emp, names in PEOPLE.items()]
                       + [hire("h-N4", "N4", "Old", "Leaver", "Sales")])
    await service.drain()
    await service.send(event("t-N4", "terminate", "N4"))
    await service.drain()


def extract(tmp_path: Path, *employees: str, name: str = "snapshot.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{e},{PEOPLE[e]},Sales,employee\n" for e in employees))
    return path


def stored(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


async def test_snapshot_reports_and_terminates_the_missing_idempotently(service, cli, entra: EntraView,
                                                                        tmp_path: Path):
    await provision(service)
    snapshot = extract(tmp_path, "N1", "N2")
    report = cli("import", "--snapshot", str(snapshot))
    assert report.exit_code == 0, report.output
    assert "missing: N3 Grace Hopper (active)" in report.output
    assert "1 of 3 employed people are missing" in report.output
    assert "N4" not in report.output  # a leaver is not missing
    assert "--terminate-missing" in report.output
    await service.drain()
    assert entra.user("N3")["accountEnabled"] is True  # reported only

    forced = cli("import", "--snapshot", "--terminate-missing", "--force", str(snapshot))
    assert forced.exit_code == 0, forced.output
    assert "1 terminate event(s) stored (source snapshot), 0 already known" in forced.output
    again = cli("import", "--snapshot", "--terminate-missing", "--force", str(snapshot))
    assert "0 event(s) stored, 2 already known" in again.output
    assert "0 terminate event(s) stored (source snapshot), 1 already known" in again.output
    await service.drain()
    assert entra.user("N3")["accountEnabled"] is False
    assert entra.groups("N3") == set()
    assert entra.user("N1")["accountEnabled"] is True and entra.user("N2")["accountEnabled"] is True
    [terminate] = [e for e in json.loads(cli("events", "list", "--employee", "N3", "--json").output)
                   if e["type"] == "terminate"]
    assert terminate["source"] == "snapshot" and terminate["status"] == "applied"
    assert terminate["event_id"].startswith("snapshot-") and terminate["event_id"].endswith("-N3")
    after = cli("import", "--snapshot", "--terminate-missing", str(snapshot))  # nobody left to end
    assert after.exit_code == 0, after.output
    assert "0 of 2 employed people are missing" in after.output
    assert "0 terminate event(s) stored" in after.output


async def test_the_share_guard_refuses_a_truncated_extract_until_forced(service, cli, entra: EntraView,
                                                                        tmp_path: Path, monkeypatch):
    await provision(service)
    truncated = extract(tmp_path, "N1")  # two of three would go: 67% > 10%
    before = stored(service)
    refused = cli("import", "--snapshot", "--terminate-missing", str(truncated))
    assert refused.exit_code == 2
    assert "2 of 3 employed people (67%) are missing" in refused.output
    assert "PROVISIONER_SNAPSHOT_MAX_TERMINATE_SHARE (10%)" in refused.output
    assert "nothing was stored" in refused.output and "--force" in refused.output
    assert stored(service) == before  # not even the file's own rows
    assert cli("import", "--terminate-missing", str(truncated)).exit_code == 2  # needs --snapshot

    monkeypatch.setenv("PROVISIONER_SNAPSHOT_MAX_TERMINATE_SHARE", "0.7")  # the setting moves the guard
    get_settings.cache_clear()
    allowed = cli("import", "--snapshot", "--terminate-missing", str(truncated))
    assert allowed.exit_code == 0, allowed.output
    assert "2 terminate event(s) stored" in allowed.output
    await service.drain()
    assert [entra.user(e)["accountEnabled"] for e in ("N1", "N2", "N3")] == [True, False, False]


async def test_the_guard_yields_to_force(service, cli, entra: EntraView, tmp_path: Path):
    await provision(service)
    result = cli("import", "--snapshot", "--terminate-missing", "--force", str(extract(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "3 of 3 employed people are missing" in result.output
    assert "3 terminate event(s) stored" in result.output
    await service.drain()
    assert all(entra.user(e)["accountEnabled"] is False for e in PEOPLE)


def test_csv_import_names_every_bad_row_and_stores_nothing(service, cli, tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("employee_id,given_name,family_name,effective_at,type\n"
                    f"B1,Ok,Row,{(utcnow() - timedelta(days=30)).isoformat()},\n"  # within the window
                    "B2,Bad,Date,not-a-date,\n"
                    "B3,Ok,Row,,\n"
                    "B4,,Nameless,,hire\n"
                    "B5,Bad,Type,,fire\n")
    result = cli("import", "--snapshot", str(path))
    assert result.exit_code == 2
    assert f"{path}:3: effective_at" in result.output
    assert f"{path}:5: " in result.output and "given_name" in result.output
    assert f"{path}:6: type" in result.output
    assert f"{path}:2:" not in result.output and f"{path}:4:" not in result.output
    assert "3 problem(s)" in result.output and "nothing was stored" in result.output
    assert stored(service) == 0
