"""Snapshot files said again: a leaver terminated by another channel is never rehired by a lagging
extract (this source's own terminations of the missing are), and an extract with the content of an
earlier file that is not the latest (a change reverted) is applied again, each file exactly once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from provisioner.hr_sources.snapshots import files
from provisioner.intake.models import HREvent
from tests.hr_sources.conftest import HEADER, SOURCE, Drop, take_twice_at_once
from tests.support import EntraView, event

MARKETING = HEADER + "N1,Ada,Lovelace,Marketing,employee\n"


def _events_of(service, employee_id: str) -> list[HREvent]:
    with service.db.read() as session:
        return list(session.scalars(select(HREvent).where(HREvent.employee_id == employee_id).order_by(HREvent.id)))


async def test_only_this_sources_own_leavers_are_rehired(service, drop: Drop, entra: EntraView, caplog):
    drop.declare(terminate_missing=True, max_terminate_share=0.5)
    drop.write("1.csv", "N1", "N2", "N3", age=300)
    await drop.pull()
    await service.drain()
    response = await service.send(event("hr-leaver-1", "terminate", "N1", immediate=True))  # over /hr/events
    assert response.status_code in (200, 202), response.text
    await service.drain()
    drop.write("2.csv", "N1", "N2", age=200)  # N3 missing: terminated by this source
    await drop.pull()
    await service.drain()
    assert entra.state("N1") == "terminated" and entra.user("N1")["accountEnabled"] is False
    assert entra.state("N3") == "terminated" and entra.user("N3")["accountEnabled"] is False

    drop.write("3.csv", "N1", "N2", "N3", "N4", age=100)  # lags behind N1's termination; N3 back; N4 new
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and pick.held == ("N1",), pick
    assert "1 row(s) of people terminated by another channel not stored (N1): not rehired" in pick.detail
    [row] = [r for r in drop.files() if r.file_name == "3.csv"]
    assert row.counts["held"] == 1 and row.counts["reasserted"] == 1 and row.counts["new"] == 2
    entry = drop.audit("hr_snapshot.applied")[-1]
    assert entry["file"] == "3.csv" and entry["held_employee_ids"] == ["N1"]
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "hr_snapshot_terminated_elsewhere"]
    assert [(a.employee_ids, a.hr_source) for a in alerts] == [(["N1"], SOURCE)] * 2  # 2.csv and 3.csv
    assert "3.csv of hr-drop lists 1 person(s) terminated by another channel" in alerts[-1].getMessage()

    await service.drain()
    assert entra.state("N1") == "terminated" and entra.user("N1")["accountEnabled"] is False
    assert [e.type for e in _events_of(service, "N1")] == ["hire", "terminate"]
    assert entra.state("N3") == "active" and entra.user("N3")["accountEnabled"] is True
    [rehire] = [e for e in _events_of(service, "N3") if e.type == "rehire"]
    assert rehire.status == "applied" and rehire.source == SOURCE


async def test_an_earlier_extract_again_is_applied_again(service, drop: Drop, entra: EntraView):
    """Sales, Marketing, then the Sales file byte for byte: Ada ends in Sales; and again."""
    drop.declare()
    day1 = drop.write("day1.csv", "N1", age=500).read_bytes()
    await drop.pull()
    await service.drain()
    drop.write("day2.csv", text=MARKETING, age=400)
    await drop.pull()
    await service.drain()
    assert entra.user("N1")["department"] == "Marketing"

    (drop.folder / "day3.csv").write_bytes(day1)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "reapplied" and pick.detail.startswith("1 event(s) stored (1 of them rows said again"), pick
    await service.drain()
    assert entra.user("N1")["department"] == "Sales"
    with service.db.read() as session:
        identity = session.scalar(select(HREvent).where(HREvent.employee_id == "N1").order_by(HREvent.id.desc()))
    assert identity.status == "applied"

    drop.write("day4.csv", text=MARKETING)  # day2 again, then day1 a third time
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "reapplied", pick
    await service.drain()
    assert entra.user("N1")["department"] == "Marketing"
    (drop.folder / "day5.csv").write_bytes(day1)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "reapplied", pick
    await service.drain()
    assert entra.user("N1")["department"] == "Sales"

    (drop.folder / "day6.csv").write_bytes(day1)  # the latest applied content: nothing would be new
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "duplicate" and "the same content as day5.csv, the latest applied" in pick.detail
    rows = drop.files()
    assert [r.status for r in rows] == ["applied", "applied", "reapplied", "reapplied", "reapplied", "duplicate"]
    assert rows[2].duplicate_of == rows[0].id and rows[3].duplicate_of == rows[1].id
    assert rows[5].duplicate_of == rows[4].id and drop.waiting() == []
    assert len(drop.audit("hr_snapshot.reapplied")) == 3


async def test_the_missing_are_terminated_again_by_an_earlier_extract_again(service, drop: Drop, entra: EntraView):
    drop.declare(terminate_missing=True, max_terminate_share=0.7)
    drop.write("a.csv", "N1", "N2", age=400)
    await drop.pull()
    await service.drain()
    shorter = drop.write("b.csv", "N1", age=300).read_bytes()  # N2 missing: terminated
    await drop.pull()
    await service.drain()
    drop.write("c.csv", "N1", "N2", "N3", age=200)  # N2 back: rehired
    await drop.pull()
    await service.drain()
    assert entra.user("N2")["accountEnabled"] is True
    (drop.folder / "d.csv").write_bytes(shorter)  # b.csv again: N2 and N3 missing (2 of 3 employed)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "reapplied" and pick.result.terminations_new == 2, pick
    await service.drain()
    assert entra.state("N2") == "terminated" and entra.user("N2")["accountEnabled"] is False
    assert [e.type for e in _events_of(service, "N2")] == ["hire", "terminate", "rehire", "terminate"]


async def sales_marketing_then_sales_again(drop: Drop) -> None:
    """Day 1 (Sales) and day 2 (Marketing) pulled; day 3, day 1's bytes again, dropped."""
    drop.declare()
    day1 = drop.write("day1.csv", "N1", age=300).read_bytes()
    await drop.pull()
    drop.write("day2.csv", text=MARKETING, age=200)
    await drop.pull()
    (drop.folder / "day3.csv").write_bytes(day1)


async def test_a_file_applied_again_and_not_moved_is_only_moved(service, drop: Drop, monkeypatch):
    """The crash case for a file with an earlier file's content: applied once, then only moved."""
    await sales_marketing_then_sales_again(drop)
    real_move = files.move

    def refused(path, to):
        raise PermissionError(13, "Permission denied", str(to))

    monkeypatch.setattr(files, "move", refused)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "reapplied" and pick.detail.endswith("not archived (see the log)"), pick
    events = len(_events_of(service, "N1"))
    assert drop.waiting() == ["day3.csv"] and events == 3

    monkeypatch.setattr(files, "move", real_move)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "archived", pick
    *_, row = drop.files()
    assert row.status == "reapplied" and Path(row.archived_to).exists() and pick.moved_to == row.archived_to
    assert drop.waiting() == [] and len(_events_of(service, "N1")) == events
    assert [r.status for r in drop.files()] == ["applied", "applied", "reapplied"]
    assert len(drop.audit("hr_snapshot.reapplied")) == 1


async def test_two_takes_of_an_earlier_content_apply_it_once(service, drop: Drop):
    """Below the folder's lock: two takes at once of a file with an earlier file's content, each
    with its own connection pool, apply it once (the loser gives way to the winner's row)."""
    await sales_marketing_then_sales_again(drop)
    [candidate] = files.candidates(drop.folder, "*.csv")
    outcomes = take_twice_at_once(service, candidate)
    assert outcomes.count("reapplied") == 1 and len(outcomes) == 2, outcomes
    assert [r.status for r in drop.files()] == ["applied", "applied", "reapplied"]
    assert len(_events_of(service, "N1")) == 3  # day1, day2, day3 said again: once
    assert drop.waiting() == [] and len(drop.archived()) == 3
