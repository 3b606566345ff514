"""``provisioner import FILE.csv [--snapshot [--terminate-missing [--force]]] [--wait | --apply]``:
HR extracts, and (``--wait``) the work they cause followed to the end (provisioner/cli/progress.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner import limits
from provisioner.cli.common import console, err_console, fail, open_db, run, settings


def import_csv(
    file: Annotated[Path, typer.Argument(help="HR extract (CSV with a header row)")],
    source: Annotated[str, typer.Option(help="source name recorded with the events")] = "csv-import",
    snapshot: Annotated[bool, typer.Option(
        "--snapshot", help="the file lists everyone employed: report the employed people missing from it")] = False,
    terminate_missing: Annotated[bool, typer.Option(
        "--terminate-missing", help="with --snapshot: send a terminate event for each person missing")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="terminate the missing even above PROVISIONER_SNAPSHOT_MAX_TERMINATE_SHARE")] = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="follow the events and their operations until done (a running 'provisioner serve' "
                       "does the work); exit 1 if any failed")] = False,
    apply: Annotated[bool, typer.Option(
        "--apply", help="like --wait, but apply the events and run the operations in this process "
                        "(an initial load without a running serve)")] = False,
) -> None:
    """Load an HR extract (initial load or catch-up); the whole file is validated first."""
    from rich.progress import Progress

    from provisioner.intake.csv_import import CsvImportError, SnapshotGuardError, import_file

    if terminate_missing and not snapshot:
        fail("--terminate-missing needs --snapshot (only a full extract says who is missing)")
    if force and not terminate_missing:
        fail("--force only overrides the guard of --terminate-missing: add --snapshot --terminate-missing")
    if not file.exists():
        fail(f"{file}: no such file")
    if not source or len(source) > limits.SOURCE or limits.refused_character(source):
        fail(f"--source: a name of 1 to {limits.SOURCE} characters without control characters")
    from provisioner.clock import utcnow
    from provisioner.intake.csv_import import SNAPSHOT_SOURCE

    cfg = settings()
    db = open_db(cfg)
    since = utcnow()
    with file.open("rb") as handle:  # counted as bytes: a file that is not UTF-8 is reported by the import
        rows = max(0, sum(1 for _ in handle) - 1)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"importing {file.name}", total=rows)
            result = import_file(db, file, source=source, progress=lambda n: progress.advance(task, n),
                                 snapshot=snapshot, terminate_missing=terminate_missing,
                                 max_terminate_share=cfg.snapshot_max_terminate_share, force=force,
                                 effective_days=(cfg.hr_effective_past_days, cfg.hr_effective_future_days))
    except CsvImportError as exc:
        for line in exc.problems:
            err_console.print(line, highlight=False, soft_wrap=True, markup=False, emoji=False)  # as written
        if exc.total > len(exc.problems):
            err_console.print(f"... and {exc.total - len(exc.problems)} more (the first {len(exc.problems)} "
                              "are listed)", highlight=False)
        fail(f"{exc.total} problem(s) in {file}: nothing was stored; fix the rows and import again")
    except SnapshotGuardError as exc:
        fail(str(exc))
    if wait or apply:
        console.print(f"{result.new} event(s) stored, {result.duplicates} already known", highlight=False)
    else:
        console.print(f"{result.new} event(s) stored, {result.duplicates} already known; they apply when due "
                      "(run 'provisioner serve', or they are picked up by a running one)", highlight=False)
    if snapshot:
        _report_snapshot(file, result, terminate_missing)
    if wait or apply:
        from provisioner.cli.progress import Work, follow

        work = Work(sources=(source, SNAPSHOT_SOURCE) if terminate_missing else (source,), since=since)
        raise typer.Exit(run(follow(db, work, apply=_in_process(cfg) if apply else None)))


def _in_process(cfg):
    """``--apply``: the processor and the worker of ``provisioner serve`` (the same Runtime),
    here, until the work is done."""
    async def apply(stop) -> None:
        import asyncio

        from provisioner.runtime import Runtime
        from provisioner.targets.config import ConfigError

        try:
            rt = Runtime.load(cfg)
        except ConfigError as exc:
            fail(f"invalid configuration: {exc.problems[0]} (run 'provisioner policy check')")

        async def relay() -> None:
            await stop.wait()
            rt.request_stop(stop)
        try:
            await asyncio.gather(rt.run_background(stop, events=True, reconcile=False, snapshot_pulls=False), relay())
        finally:
            await rt.aclose()
    return apply


def _report_snapshot(file: Path, result, terminate_missing: bool) -> None:
    for m in result.missing:
        console.print(f"missing: {m.employee_id} {m.name} ({m.state})", highlight=False, soft_wrap=True)
    console.print(f"{len(result.missing)} of {result.population} employed people are missing from {file}",
                  highlight=False)
    if terminate_missing:
        console.print(f"{result.terminations_new} terminate event(s) stored (source snapshot), "
                      f"{result.terminations_known} already known", highlight=False)
    elif result.missing:
        console.print("to terminate them: the same command with --terminate-missing", highlight=False)
