"""``provisioner hr-sources pull [SOURCE]``: scan the snapshot folders now, as the scheduler does
every ``snapshot.every`` (provisioner/hr_sources/snapshots)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner.cli.common import console, err_console, fail, open_db, settings


def pull(source: Annotated[Optional[str], typer.Argument(
        help="the HR source (its name); default: every source with a snapshot section")] = None) -> None:
    """Take the snapshot files dropped in the sources' folders now: each new one applied once and
    archived, a bad one moved to rejected/ with its errors (exit 1)."""
    from provisioner.hr_sources.declarations import load_sources
    from provisioner.hr_sources.snapshots.models import FileStatus
    from provisioner.hr_sources.snapshots.service import scan, with_snapshots
    from provisioner.targets.config import ConfigError

    cfg = settings()
    try:
        sources = with_snapshots(load_sources(cfg.hr_sources_dir))
    except ConfigError as exc:
        fail(f"invalid HR source: {exc.problems[0]} (fix the file under {cfg.hr_sources_dir})")
    if source is not None:
        sources = [s for s in sources if s.name == source]
        if not sources:
            fail(f"no HR source {source!r} with a snapshot section under {cfg.hr_sources_dir} "
                 "(add 'snapshot: {folder: ...}' to its file, or name another source)")
    elif not sources:
        fail(f"no HR source under {cfg.hr_sources_dir} has a snapshot section (PROVISIONER_HR_SOURCES_DIR; "
             "README 'HR sources: snapshot files dropped in a folder')")
    db = open_db(cfg)
    bad = False
    try:
        for found in (scan(db, cfg, s) for s in sources):
            if found.skipped:
                console.print(f"{found.source}: skipped: {found.skipped}", highlight=False, soft_wrap=True)
                bad = bad or "no such folder" in found.skipped
            elif not found.picks:
                console.print(f"{found.source}: no new file", highlight=False)
            for pick in found.picks:
                console.print(f"{found.source}: {pick.file}: {pick.outcome}: {pick.detail}"
                              + (f" -> {pick.moved_to}" if pick.moved_to else ""), highlight=False, soft_wrap=True)
                for problem in pick.problems:
                    err_console.print(problem, highlight=False, soft_wrap=True, markup=False, emoji=False)
                if pick.result is not None:
                    for m in pick.result.missing:
                        console.print(f"  missing: {m.employee_id} {m.name} ({m.state})", highlight=False,
                                      soft_wrap=True, markup=False)
                bad = bad or pick.outcome in (FileStatus.FAILED, "error")
    finally:
        db.dispose()
    if bad:
        raise typer.Exit(1)


def snapshots(source: Annotated[Optional[str], typer.Argument(help="only this HR source")] = None,
              limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The snapshot files taken from the folders, newest first: applied, duplicate or failed, with
    their counts, their errors and where they were moved."""
    import json

    from rich.table import Table

    from provisioner.hr_sources.snapshots import repository

    db = open_db(settings())
    try:
        with db.read() as session:
            rows = repository.recent(session, source, limit)
    finally:
        db.dispose()
    if as_json:
        console.print_json(json.dumps([{
            "id": r.id, "source": r.source, "file": r.file_name, "sha256": r.sha256, "size": r.size,
            "picked_at": r.picked_at.isoformat(), "status": r.status, "counts": r.counts, "errors": r.errors,
            "moved_to": r.archived_to, "duplicate_of": r.duplicate_of} for r in rows]))
        return
    table = Table(title="HR snapshot files")
    for col in ("id", "source", "file", "picked at", "status", "counts", "moved to"):
        table.add_column(col, overflow="fold")
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items() if v) or "-"
        if r.duplicate_of:
            counts = f"same content as #{r.duplicate_of}" + (f"; {counts}" if r.counts else "")
        table.add_row(str(r.id), r.source, r.file_name, r.picked_at.strftime("%Y-%m-%d %H:%M:%S"), r.status,
                      counts, r.archived_to or "-")
    console.print(table)
