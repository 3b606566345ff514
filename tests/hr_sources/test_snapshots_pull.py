"""Snapshot pulls as they run: the scheduled job of `serve`, `provisioner hr-sources pull`, one
scanner per folder across processes, exactly once across a crash and concurrent claims, and the
source file's ``snapshot`` section."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.hr_sources.declarations import load_sources
from provisioner.hr_sources.snapshots import files
from provisioner.hr_sources.snapshots.models import SnapshotFile
from provisioner.intake import csv_import
from provisioner.targets.config import ConfigError
from tests.hr_sources.conftest import SOURCE, Drop, take_twice_at_once
from tests.support import EntraView


async def _until(check, seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "not done in time"
        await asyncio.sleep(0.1)


async def test_the_scheduled_job_picks_files_up(service, drop: Drop, entra: EntraView):
    """`serve`'s background work (the scheduler, the processor, the worker), every snapshot.every."""
    drop.declare(every="1s")
    drop.write("first.csv", "N1")
    rt, stop = service.runtime, asyncio.Event()
    background = asyncio.create_task(rt.run_background(stop, events=True, reconcile=False))
    try:
        await _until(lambda: drop.waiting() == [] and entra.user("N1") is not None)  # the job's first run, at start
        drop.write("second.csv", "N1", "N2")
        await _until(lambda: drop.waiting() == [] and entra.user("N2") is not None)  # the next, a second later
    finally:
        rt.request_stop(stop)
        await background
    assert [r.status for r in drop.files()] == ["applied", "applied"]
    assert drop.events() == 2


async def test_no_job_without_a_snapshot_section(service, drop: Drop):
    (drop.dir / "other.yaml").write_text("bulk_upload: {}\n")
    service.runtime.hr_sources = load_sources(drop.dir)
    assert await service.runtime.pull_snapshots() == []


async def test_one_scanner_per_folder_across_processes(service, drop: Drop):
    drop.declare()
    drop.write("x.csv", "N1")
    other = Database(service.settings.database_url)  # another process's view of the database
    lock = other.named_lock(f"hr-snapshots:{SOURCE}")
    assert lock.acquire(0)
    try:
        scan = await drop.pull()
        assert scan.skipped == "another process is scanning this folder" and scan.picks == []
        assert drop.waiting() == ["x.csv"] and drop.events() == 0
    finally:
        lock.release()
        other.dispose()
    assert [p.outcome for p in (await drop.pull()).picks] == ["applied"]


async def test_a_stop_between_the_import_and_the_move_does_not_apply_again(service, drop: Drop, monkeypatch):
    """The import committed, the file was not moved (the process stopped, or the move failed):
    the next scan only moves it, to the path its row names."""
    drop.declare()
    drop.write("x.csv", "N1", "N2")
    real_move = files.move

    def refused(path, to):
        raise PermissionError(13, "Permission denied", str(to))

    monkeypatch.setattr(files, "move", refused)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "applied" and pick.detail.endswith("not archived (see the log)")
    assert drop.waiting() == ["x.csv"] and drop.events() == 2

    monkeypatch.setattr(files, "move", real_move)
    [pick] = (await drop.pull()).picks
    assert pick.outcome == "archived", pick
    [row] = drop.files()
    assert row.status == "applied" and Path(row.archived_to).exists() and pick.moved_to == row.archived_to
    assert drop.waiting() == [] and drop.events() == 2 and len(drop.audit("hr_snapshot.applied")) == 1


async def test_two_claims_of_one_file_apply_it_once(service, drop: Drop):
    """Below the lock, the claim itself: two takes of the same file at once, each with its own
    database connection pool, store its events once and record one applied row."""
    drop.declare()
    drop.write("x.csv", "N1", "N2", "N3")
    [candidate] = files.candidates(drop.folder, "*.csv")
    outcomes = take_twice_at_once(service, candidate)
    assert sorted(outcomes)[0] == "applied" and outcomes.count("applied") == 1, outcomes
    assert drop.events() == 3
    assert [r.status for r in drop.files()] == ["applied"]
    assert drop.waiting() == [] and len(drop.archived()) == 1


def test_one_applied_row_per_content(db):
    row = {"source": SOURCE, "file_name": "a.csv", "sha256": "0" * 64, "size": 1, "status": "applied",
           "counts": {}}
    with db.transaction() as session:
        session.add(SnapshotFile(picked_at=utcnow(), **row))
        session.add(SnapshotFile(picked_at=utcnow(), **{**row, "status": "duplicate"}))
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(SnapshotFile(picked_at=utcnow(), **{**row, "file_name": "b.csv"}))
        session.flush()


async def test_pull_command(service, drop: Drop, cli):
    drop.declare()
    assert cli("hr-sources", "pull").output.strip() == f"{SOURCE}: no new file"
    drop.write("good.csv", "N1", age=120)
    drop.write("bad.csv", text="employee_id,given_name\n,Nobody\nB2,\u0007\n", age=60)
    result = cli("hr-sources", "pull", SOURCE)
    assert result.exit_code == 1, result.output
    assert f"{SOURCE}: good.csv: applied: 1 event(s) stored" in result.output
    assert f"{SOURCE}: bad.csv: failed: 2 problem(s), nothing applied -> {drop.folder / 'rejected'}" in result.output
    assert "bad.csv:2: employee_id" in result.output and "bad.csv:3: attributes.given_name" in result.output
    again = cli("hr-sources", "pull")
    assert again.exit_code == 0 and again.output.strip() == f"{SOURCE}: no new file"
    listed = json.loads(cli("hr-sources", "snapshots", SOURCE, "--json").output)
    assert [(r["file"], r["status"]) for r in listed] == [("bad.csv", "failed"), ("good.csv", "applied")]
    assert listed[0]["counts"] == {"problems": 2} and listed[0]["errors"][0].startswith("bad.csv:2: employee_id")
    assert listed[1]["counts"]["new"] == 1 and listed[1]["moved_to"].startswith(str(drop.folder / "archive"))
    table = cli("hr-sources", "snapshots")
    assert "good.csv" in table.output and "failed" in table.output and "problems 2" in table.output

    unknown = cli("hr-sources", "pull", "nope")
    assert unknown.exit_code == 2 and "no HR source 'nope' with a snapshot section" in unknown.output
    (drop.dir / f"{SOURCE}.yaml").write_text("snapshot:\n  folder: drop\n  every: 5 minutes\n")
    broken = cli("hr-sources", "pull")
    assert broken.exit_code == 2
    assert f"{drop.dir / SOURCE}.yaml:3: snapshot.every" in broken.output


async def test_a_missing_folder_is_reported(service, drop: Drop, cli):
    drop.declare(folder="/nonexistent/hr-drop")
    scan = await drop.pull()
    assert scan.skipped == "/nonexistent/hr-drop: no such folder (snapshot.folder)"
    result = cli("hr-sources", "pull")
    assert result.exit_code == 1 and "no such folder" in result.output


def test_the_snapshot_section(tmp_path: Path):
    (tmp_path / "rel.yaml").write_text("snapshot: {folder: drops/hr, every: 5m, terminate_missing: true}\n")
    (tmp_path / "abs.yaml").write_text("snapshot: {folder: /srv/hr, archive: /srv/done, pattern: 'hr-*.csv'}\n")
    sources = load_sources(tmp_path)
    rel, absolute = sources["rel"].snapshot, sources["abs"].snapshot
    assert rel.folder == tmp_path / "drops/hr" and rel.archive == tmp_path / "drops/hr/archive"
    assert rel.rejected == tmp_path / "drops/hr/rejected" and rel.interval_seconds == 300
    assert rel.terminate_missing is True and rel.settle_seconds == 30 and rel.pattern == "*.csv"
    assert (absolute.folder, absolute.archive, absolute.rejected) == (Path("/srv/hr"), Path("/srv/done"),
                                                                      Path("/srv/hr/rejected"))
    assert absolute.interval_seconds is None and absolute.terminate_missing is False

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("snapshot:\n  folder: in\n  archive: ./in\n  pattern: sub/*.csv\n"
                                "  every: 5x\n  settle_seconds: -1\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_sources(bad)
    text = "\n".join(err.value.problems)
    for expected in (f"{bad}/x.yaml:4: snapshot.pattern", f"{bad}/x.yaml:5: snapshot.every",
                     f"{bad}/x.yaml:6: snapshot.settle_seconds", f"{bad}/x.yaml:7: snapshot.colour"):
        assert expected in text, text
    (bad / "x.yaml").write_text("snapshot:\n  folder: in\n  archive: ./in\n")
    with pytest.raises(ConfigError) as err:
        load_sources(bad)
    assert "archive must be another folder than folder" in err.value.problems[0]


async def test_a_file_that_cannot_be_taken_now_holds_the_newer_ones_back(service, drop: Drop, monkeypatch):
    """An error that is not the file's fault (the database unavailable): the file stays for the
    next scan, and newer files wait behind it, so an older extract never applies after a newer one."""
    drop.declare()
    drop.write("older.csv", "N1", "N2", age=60)
    drop.write("newer.csv", "N1", age=30)
    real_read = csv_import.read

    def unavailable(*args, **kw):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(csv_import, "read", unavailable)
    picks = (await drop.pull()).picks
    assert [(p.file, p.outcome) for p in picks] == [("older.csv", "error")]
    assert drop.waiting() == ["newer.csv", "older.csv"] and drop.files() == []
    monkeypatch.setattr(csv_import, "read", real_read)
    assert [(p.file, p.outcome) for p in (await drop.pull()).picks] == [("older.csv", "applied"),
                                                                        ("newer.csv", "applied")]


async def test_import_apply_runs_no_pulls(service, drop: Drop):
    """`provisioner import --apply` runs the processor and the worker in its own process
    (``snapshot_pulls=False``): it does not take the folder's files."""
    drop.declare(every="1s")
    drop.write("x.csv", "N1")
    rt, stop = service.runtime, asyncio.Event()
    background = asyncio.create_task(rt.run_background(stop, events=True, reconcile=False, snapshot_pulls=False))
    await asyncio.sleep(1.5)
    rt.request_stop(stop)
    await background
    assert drop.waiting() == ["x.csv"] and drop.files() == []
