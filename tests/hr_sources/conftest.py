"""An HR source with a snapshot folder, wired into the test service's runtime, and the
``provisioner`` command pointed at the same service and source folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from provisioner.audit.models import AuditRecord
from provisioner.cli.main import app
from provisioner.hr_sources.declarations import load_sources
from provisioner.hr_sources.snapshots.models import SnapshotFile
from provisioner.intake.models import HREvent
from provisioner.settings import get_settings

SOURCE = "hr-drop"
HEADER = "employee_id,given_name,family_name,department,employment_type\n"
PEOPLE = {"N1": "Ada,Lovelace", "N2": "Alan,Turing", "N3": "Grace,Hopper", "N4": "Edsger,Dijkstra"}


class Drop:
    """The source file (``hr_sources/hr-drop.yaml``, folder ``drop/`` beside it) and its folders."""

    def __init__(self, root: Path, service: Any) -> None:
        self.dir, self.service = root / "hr_sources", service
        self.folder = self.dir / "drop"
        self.folder.mkdir(parents=True)

    def declare(self, **section: Any) -> None:
        """Write the source file and load it into the runtime (as ``Runtime.load`` does)."""
        (self.dir / f"{SOURCE}.yaml").write_text(yaml.safe_dump(
            {"description": "HR extracts", "snapshot": {"folder": "drop", "settle_seconds": 0, **section}}))
        self.service.runtime.hr_sources = load_sources(self.dir)

    def write(self, name: str, *employees: str, text: str | None = None, age: float = 120.0) -> Path:
        """A full extract of these people, last modified ``age`` seconds ago."""
        path = self.folder / name
        path.write_text(text if text is not None else
                        HEADER + "".join(f"{e},{PEOPLE[e]},Sales,employee\n" for e in employees))
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
        return path

    def waiting(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def archived(self) -> list[Path]:
        return sorted((self.folder / "archive").glob("*")) if (self.folder / "archive").exists() else []

    def rejected(self) -> list[Path]:
        return sorted((self.folder / "rejected").glob("*")) if (self.folder / "rejected").exists() else []

    async def pull(self):
        [scan] = await self.service.runtime.pull_snapshots(SOURCE)
        return scan

    def events(self, source: str = SOURCE) -> int:
        with self.service.db.read() as session:
            return session.scalar(select(func.count()).select_from(HREvent).where(HREvent.source == source))

    def files(self) -> list[SnapshotFile]:
        with self.service.db.read() as session:
            return list(session.scalars(select(SnapshotFile).order_by(SnapshotFile.id)))

    def audit(self, kind: str) -> list[dict]:
        with self.service.db.read() as session:
            return [r.data for r in session.scalars(select(AuditRecord).where(AuditRecord.kind == kind)
                                                    .order_by(AuditRecord.seq))]


@pytest.fixture
def drop(service, tmp_path: Path) -> Drop:
    return Drop(tmp_path, service)


@pytest.fixture
def cli(service, drop: Drop, monkeypatch) -> Iterator[Callable[..., Result]]:
    """``cli("hr-sources", "pull")``: the real command against the service's database and sources."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    monkeypatch.setenv("PROVISIONER_HR_SOURCES_DIR", str(drop.dir))
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def take_twice_at_once(service, candidate) -> list[str]:
    """Two takes of ``candidate`` started together, each with its own database connection pool
    (two processes' claims, below the folder's lock): their outcomes."""
    import threading

    from provisioner.db import Database
    from provisioner.hr_sources.snapshots.service import take

    section = service.runtime.hr_sources[SOURCE].snapshot
    dbs = [Database(service.settings.database_url) for _ in range(2)]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run(db: Database) -> None:
        barrier.wait()
        outcomes.append(take(db, service.settings, SOURCE, section, candidate).outcome)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in dbs:
        db.dispose()
    return outcomes
