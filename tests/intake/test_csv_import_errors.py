"""`provisioner import`: one run reports every problem of a file (field limits as over HTTP,
duplicates naming both lines), capped at 100 lines with the count of all; nothing is stored."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from provisioner import limits
from provisioner.identities import repository as identities
from provisioner.intake.models import HREvent


def stored(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


def test_every_problem_is_reported_in_one_run(service, cli, tmp_path: Path):
    path = tmp_path / "bad.csv"
    long_family = "F" * (limits.FAMILY_NAME + 1)
    path.write_text("employee_id,given_name,family_name,job_code,effective_at,badge\n"
                    "D1,Ada,Lovelace,ENG,,blue\n"                       # 2: fine
                    f"D2,Too,{long_family},ENG,,\n"                      # 3: family_name too long
                    "D3,Nul,Name\x00,ENG,,\n"                            # 4: a control character
                    f"D4,Job,Code,{'J' * (limits.JOB_CODE + 1)},,\n"     # 5: job_code too long
                    "D1,Ada,Byron,ENG,,red\n"                             # 6: D1 hired twice
                    "D5,Old,Date,ENG,2001-01-01T00:00:00+00:00,\n"        # 7: outside the window
                    f"{'E' * (limits.EMPLOYEE_ID + 1)},Long,Id,ENG,,\n"  # 8: employee_id too long
                    "D6,Fine,Row,ENG,,green\n"                            # 9: fine
                    "D6,Fine,Row,ENG,,green\n",                           # 10: the same row again
                    encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 2, result.output
    out = result.output
    assert f"{path}:3: attributes.family_name: String should have at most 200 characters" in out
    assert f"{path}:4: attributes.family_name: control characters are not allowed (U+0000" in out
    assert f"{path}:5: attributes.job_code: String should have at most 100 characters" in out
    assert f"{path}:6: employee_id: 'D1' is hired twice (also at line 2)" in out
    assert f"{path}:7: effective_at: more than 400 days in the past" in out
    assert f"{path}:8: employee_id: String should have at most 100 characters" in out
    assert f"{path}:10: event_id: " in out and "is also the event_id of line 9" in out
    assert f"{path}:2:" not in out and f"{path}:9:" not in out
    assert f"{path}:8: event_id" not in out  # a bad employee_id is reported once, not again in the id
    assert "7 problem(s)" in out and "nothing was stored" in out
    assert stored(service) == 0


def test_more_than_100_problems_are_capped_with_the_count(service, cli, tmp_path: Path):
    path = tmp_path / "many.csv"
    path.write_text("employee_id,given_name,family_name\n" + "".join(f"M{n},Given{n},\n" for n in range(150)))
    result = cli("import", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(f"{path}:")]
    assert len(lines) == 100  # as written: rich would have made "many.csv:100:" an emoji
    assert lines[0] == f"{path}:2: attributes.family_name: required for a hire"
    assert lines[-1] == f"{path}:101: attributes.family_name: required for a hire"
    assert "... and 50 more" in result.output
    assert "150 problem(s)" in result.output
    assert stored(service) == 0


def test_an_unreadable_file_and_a_bad_source_are_one_line_errors(service, cli, tmp_path: Path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("employee_id,given_name,family_name\nL1,Jos\xe9,Garc\xeda\n".encode("latin-1"))
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert f"{path}:2: file: not UTF-8 text" in result.output
    good = tmp_path / "good.csv"
    good.write_text("employee_id,given_name,family_name\nG1,Good,Row\n")
    result = cli("import", str(good), "--source", "s" * (limits.SOURCE + 1))
    assert result.exit_code == 2 and "--source: a name of 1 to 100 characters" in result.output
    assert stored(service) == 0


async def test_values_at_their_limits_import_and_apply(service, cli, tmp_path: Path):
    emp = "C" * limits.EMPLOYEE_ID
    given, family = "G" * limits.GIVEN_NAME, "Ä" * limits.FAMILY_NAME
    path = tmp_path / "limits.csv"
    path.write_text(f"employee_id,given_name,family_name,cost_center,{'k' * limits.EXTRA_KEY}\n"
                    f"{emp},{given},{family},{'9' * limits.COST_CENTER},{'v' * limits.EXTRA_VALUE}\n",
                    encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    await service.drain()
    with service.db.transaction() as session:
        person = identities.by_employee_id(session, emp)
        assert person is not None and person.state == "active"
        assert (person.given_name, person.family_name) == (given, family)
        assert person.extra == {"k" * limits.EXTRA_KEY: "v" * limits.EXTRA_VALUE}
        assert len(person.display_name) == limits.DISPLAY_NAME
