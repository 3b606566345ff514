"""Snapshot files dropped in a source's folder: each applied once (events stored, users in the
Graph sandbox), archived; the same content again recognised; a bad file moved aside with every
error and nothing of it stored; a file still being written left for the next scan."""

from __future__ import annotations

from pathlib import Path

from provisioner.clock import utcnow
from tests.hr_sources.conftest import HEADER, PEOPLE, SOURCE, Drop
from tests.support import EntraView


async def test_a_dropped_file_is_applied_once_and_archived(service, drop: Drop, entra: EntraView):
    drop.declare()
    content = drop.write("hr-2026-12-01.csv", "N1", "N2").read_bytes()

    scan = await drop.pull()
    [pick] = scan.picks
    assert (pick.file, pick.outcome) == ("hr-2026-12-01.csv", "applied"), pick
    assert pick.detail.startswith("2 event(s) stored, 0 already known")
    assert drop.events() == 2 and drop.waiting() == []
    [archived] = drop.archived()
    assert archived.name.endswith("-hr-2026-12-01.csv") and archived.read_bytes() == content
    [row] = drop.files()
    assert (row.source, row.status, row.file_name, row.size) == (SOURCE, "applied", "hr-2026-12-01.csv", len(content))
    assert row.counts["new"] == 2 and row.archived_to == str(archived)
    [entry] = drop.audit("hr_snapshot.applied")
    assert entry["file"] == "hr-2026-12-01.csv" and entry["new"] == 2

    await service.drain()  # the processor and the worker, as `serve` runs them
    assert entra.user("N1")["displayName"] == "Ada Lovelace" and entra.user("N1")["accountEnabled"] is True
    assert await entra.count_users("N2") == 1

    again = await drop.pull()
    assert again.picks == [] and drop.events() == 2 and len(drop.files()) == 1


async def test_the_same_content_under_another_name_is_not_applied_again(service, drop: Drop):
    drop.declare()
    first = drop.write("monday.csv", "N1", "N2")
    content = first.read_bytes()
    await drop.pull()
    (drop.folder / "tuesday.csv").write_bytes(content)  # HR sends the same extract again

    [pick] = (await drop.pull()).picks
    assert pick.outcome == "duplicate"
    assert "the same content as monday.csv" in pick.detail and "not applied again" in pick.detail
    assert drop.events() == 2 and drop.waiting() == []
    assert [p.name.split("-", 1)[1] for p in drop.archived()] == ["monday.csv", "tuesday.csv"]
    applied, duplicate = drop.files()
    assert (duplicate.status, duplicate.duplicate_of, duplicate.sha256) == ("duplicate", applied.id, applied.sha256)
    [entry] = drop.audit("hr_snapshot.duplicate")
    assert entry["applied_file"] == "monday.csv"

    drop.write("wednesday.csv", "N1", "N2", "N3")  # a changed extract is a new snapshot
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and drop.events() == 3  # only N3's row is new


def _failed_count(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("provisioner_hr_snapshot_files_total{") and 'outcome="failed"' in line \
                and f'source="{SOURCE}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_bad_file_is_moved_aside_with_every_error_and_nothing_applied(service, drop: Drop, caplog):
    drop.declare()
    failed_before = _failed_count(await service.metrics())
    drop.write("bad.csv", text="employee_id,given_name,family_name,effective_at,type\n"
                               "B1,Ok,Row,,\n"
                               "B2,Bad,Date,not-a-date,\n"
                               "B3,Ok,Row,,\n"
                               "B4,,Nameless,,hire\n"
                               "B5,Bad,Type,,fire\n"
                               "B1,Ok,Again,,hire\n")
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "failed" and pick.detail == "4 problem(s), nothing applied"
    lines = [p.split(":")[1] for p in pick.problems]
    assert lines == ["3", "5", "6", "7"], pick.problems
    assert drop.events() == 0 and drop.waiting() == [] and drop.archived() == []
    moved, errors = drop.rejected()
    assert moved.name.endswith("-bad.csv") and errors.name == moved.name + ".errors.txt"
    text = errors.read_text()
    assert "4 problem(s); nothing of it was applied" in text
    for line in ("bad.csv:3: effective_at", "bad.csv:5: ", "bad.csv:6: type", "bad.csv:7: "):
        assert line in text
    [row] = drop.files()
    assert row.status == "failed" and row.counts == {"problems": 4} and len(row.errors) == 4
    assert row.archived_to == str(moved)
    [entry] = drop.audit("hr_snapshot.failed")
    assert entry["problems"] == 4 and entry["moved_to"] == str(moved)
    [alert] = [r for r in caplog.records if getattr(r, "alert", None) == "hr_snapshot_rejected"]
    assert alert.problems == 4 and alert.hr_source == SOURCE and f"bad.csv of {SOURCE} refused" in alert.getMessage()
    assert _failed_count(await service.metrics()) == failed_before + 1
    assert (await drop.pull()).picks == []  # not looked at again


async def test_a_file_still_being_written_is_left_for_the_next_scan(service, drop: Drop):
    drop.declare(settle_seconds=30)
    path = drop.write("half.csv", "N1", age=1)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "waiting" and "settle_seconds" in pick.detail
    assert drop.waiting() == ["half.csv"] and drop.events() == 0 and drop.files() == []

    drop.write(".next.csv.part", "N2")  # HR's own temporary name: never taken
    drop.write(path.name, "N1", "N3", age=60)  # written to the end, quiet since
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and drop.events() == 2
    assert drop.waiting() == [".next.csv.part"]


async def test_files_are_taken_oldest_first(service, drop: Drop):
    drop.declare()
    drop.write("b.csv", "N1", "N2", age=60)
    drop.write("a.csv", "N1", age=30)  # newer, though its name sorts first
    assert [p.file for p in (await drop.pull()).picks] == ["b.csv", "a.csv"]


async def test_a_long_file_name_is_stored_whole(service, drop: Drop):
    """The column holds a file name's 255 bytes (tested on PostgreSQL too); the archived copy's
    name is shortened to leave room for the time prefix."""
    drop.declare(pattern="*.txt")
    name = "x" * 251 + ".txt"
    drop.write(name, "N1")
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied", pick
    [row] = drop.files()
    assert row.file_name == name and len(row.file_name) == 255
    [archived] = drop.archived()
    assert archived.name.endswith(".txt") and len(archived.name) <= 255


async def test_terminate_missing_under_the_guard(service, drop: Drop, entra: EntraView):
    drop.declare(terminate_missing=True, max_terminate_share=0.4)
    drop.write("full.csv", "N1", "N2", "N3")
    await drop.pull()
    await service.drain()
    assert [entra.user(e)["accountEnabled"] for e in ("N1", "N2", "N3")] == [True, True, True]

    drop.write("day2.csv", "N1", "N2")  # N3 left: 1 of 3 (33%), under the 40% guard
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and pick.result.terminations_new == 1, pick
    assert [m.employee_id for m in pick.result.missing] == ["N3"]
    await service.drain()
    assert entra.user("N3")["accountEnabled"] is False and entra.state("N3") == "terminated"
    assert entra.user("N1")["accountEnabled"] is True
    assert drop.events("snapshot") == 0  # the source's name is the terminations' source too

    before = drop.events()
    drop.write("truncated.csv", "N1")  # 1 of 2 (50%) would go: refused, nothing of it stored
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "failed"
    assert "1 of 2 employed people (50%) are missing" in pick.problems[0]
    assert drop.events() == before
    [moved, errors] = drop.rejected()
    assert "nothing was stored" in errors.read_text()
    await service.drain()
    assert entra.user("N2")["accountEnabled"] is True


async def test_without_terminate_missing_the_missing_are_only_reported(service, drop: Drop, entra: EntraView):
    drop.declare()
    drop.write("full.csv", "N1", "N2")
    await drop.pull()
    await service.drain()
    drop.write("next.csv", "N1")
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and "1 of 2 employed people missing" in pick.detail
    assert pick.result.terminations_new == 0
    await service.drain()
    assert entra.user("N2")["accountEnabled"] is True


async def test_events_effective_now_are_due_after_the_pull(service, drop: Drop, entra: EntraView):
    """The rows take the time of the pull as effective_at: due at once."""
    drop.declare()
    drop.write("now.csv", "N4")
    before = utcnow()
    scan = await drop.pull()
    assert scan.stored
    await service.drain()
    assert entra.state("N4") == "active"
    assert Path(scan.picks[0].moved_to).exists() and before <= drop.files()[0].picked_at


async def test_a_row_said_again_after_a_change_applies_again(service, drop: Drop, entra: EntraView):
    """The full truth at each pull: a transfer reverted, a person terminated as missing who is in
    the next extract (rehired); a row equal to the person's last event gives nothing."""
    drop.declare(terminate_missing=True, max_terminate_share=0.5)
    drop.write("1.csv", "N1", "N2", "N3", age=300)
    await drop.pull()
    await service.drain()
    drop.write("2.csv", text=HEADER + "N1,Ada,Lovelace,Marketing,employee\nN2,Alan,Turing,Sales,employee\n", age=200)
    await drop.pull()
    await service.drain()
    assert entra.user("N1")["department"] == "Marketing" and entra.state("N3") == "terminated"

    drop.write("3.csv", "N1", "N2", "N3", "N4", age=100)  # N1 back in Sales, N3 back, N4 new
    [pick] = (await drop.pull()).picks
    assert pick.detail.startswith("3 event(s) stored (2 of them rows said again after a change), 1 already known")
    await service.drain()
    assert entra.user("N1")["department"] == "Sales"
    assert entra.state("N3") == "active" and entra.user("N3")["accountEnabled"] is True
    [rehire] = [e for e in _events_of(service, "N3") if e.type == "rehire"]
    assert rehire.status == "applied" and rehire.source == SOURCE

    rows = "".join(f"{e},{PEOPLE[e]},Sales,employee\n" for e in ("N1", "N2", "N3", "N4"))
    drop.write("4.csv", text=HEADER + rows + "N9,Extra,Person,Sales,employee\n", age=10)
    [pick] = (await drop.pull()).picks
    assert pick.detail.startswith("1 event(s) stored, 4 already known"), pick.detail  # only N9 is new


def _events_of(service, employee_id: str):
    from sqlalchemy import select

    from provisioner.intake.models import HREvent

    with service.db.read() as session:
        return list(session.scalars(select(HREvent).where(HREvent.employee_id == employee_id).order_by(HREvent.id)))
