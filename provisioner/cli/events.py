"""``provisioner events``: HR events and what became of each (applied, rejected and why, ...)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, open_db, settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

events_app = typer.Typer(no_args_is_help=True, help="HR events and their fate (applied, rejected, ...).")


def _statuses() -> list[str]:
    from provisioner.intake.models import EventStatus

    return sorted(v for k, v in vars(EventStatus).items() if k.isupper())


@events_app.command("list")
def events_list(
    rejected: Annotated[bool, typer.Option("--rejected", help="only rejected events")] = False,
    status: Annotated[Optional[str], typer.Option(help="only events with this status")] = None,
    employee: Annotated[Optional[str], typer.Option(help="only this employee id's events")] = None,
    source: Annotated[Optional[str], typer.Option(help="only events from this source")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array instead of a table")] = False,
) -> None:
    """List HR events, newest first, with their status and the reason for it."""
    from provisioner.intake import fate, repository

    if rejected and status not in (None, "rejected"):
        fail(f"--rejected and --status {status} contradict each other: give one of them")
    wanted = "rejected" if rejected else status
    if wanted is not None and wanted not in _statuses():
        fail(f"--status must be one of {', '.join(_statuses())}, not {wanted!r}")
    db = open_db(settings())
    with db.read() as session:
        rows = fate.views(session, repository.listing(session, status=wanted, employee_id=employee,
                                                        source=source, limit=limit, newest_first=True))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    title = f"HR events{f' ({wanted})' if wanted else ''}{f' for {employee}' if employee else ''}: {len(rows)}"
    table = Table(title=title)
    for col in ("event id", "type", "employee", "source", "effective", "status", "reason"):
        table.add_column(col, overflow="fold")
    for e in rows:
        table.add_row(e["event_id"], e["type"], e["employee_id"], e["source"], e["effective_at"],
                      e["status"], e["reason"] or "")
    console.print(table)


@events_app.command("show")
def events_show(
    event_id: Annotated[str, typer.Argument(help="the event's event_id")],
    as_json: Annotated[bool, typer.Option("--json", help="the event as JSON")] = False,
) -> None:
    """One HR event: its status, the reason, and any warning it was applied with (and whether
    the warning is resolved, e.g. the unknown manager has been hired since)."""
    from provisioner.intake import fate, repository

    db = open_db(settings())
    with db.read() as session:
        event = repository.get(session, event_id)
        if event is None:
            fail(f"no HR event {event_id!r}: `provisioner events list` shows the known ones")
        row = fate.views(session, [event])[0]
    if as_json:
        console.print_json(json.dumps(row))
        return
    for key in ("event_id", "type", "employee_id", "source", "effective_at", "status", "reason", "processed_at"):
        console.print(f"{key}: {row[key] if row[key] is not None else ''}", highlight=False, soft_wrap=True)
    for warning in row["warnings"]:
        state = "resolved" if warning.get("resolved") else "open"
        console.print(f"warning ({state}) {warning['field']}: {warning['message']}"
                      + (f" — {warning['resolution']}" if warning.get("resolution") else ""),
                      highlight=False, soft_wrap=True)


def print_person_events(session: Session, employee_id: str) -> int:
    """One line per HR event of this person (for ``provisioner identity``); returns the count."""
    from provisioner.intake import repository

    rows = repository.for_employee(session, employee_id)
    if rows:
        console.print("  HR events:")
    for e in rows:
        mark = e.status.upper() if e.status in ("rejected", "superseded", "failed") else e.status
        console.print(f"  {e.effective_at.isoformat(timespec='seconds')} {e.type} {e.event_id} "
                      f"({e.source}) {mark}{f': {e.status_reason}' if e.status_reason else ''}",
                      highlight=False, soft_wrap=True)
    return len(rows)


def _operator() -> str:
    import getpass

    try:
        return f"operator {getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "an operator"


@events_app.command("replay")
def events_replay(
    event_ids: Annotated[Optional[list[str]], typer.Argument(help="failed events to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every failed event")] = False,
) -> None:
    """Set failed events back to pending once the cause is fixed; the processor applies them at
    its next round, then the person's later events that waited behind them."""
    from provisioner.intake import failures

    if bool(event_ids) == all_:
        fail("name the failed events to replay (see 'provisioner events list --status failed') or give --all")
    db = open_db(settings())
    try:
        with db.transaction() as session:
            done = failures.replay(session, None if all_ else event_ids, by=_operator())
    except failures.NotFailed as exc:
        fail(f"{exc}; nothing was replayed")
    for r in done:
        console.print(f"{r.event_id} ({r.employee_id}) pending again; it had failed with: {r.failed_with}; "
                      f"{r.waiting} later event(s) of this person waited behind it", highlight=False, soft_wrap=True)
    console.print(f"{len(done)} event(s) replayed: the processor applies them at its next round", highlight=False)


@events_app.command("discard")
def events_discard(
    event_ids: Annotated[list[str], typer.Argument(help="failed events to give up on")],
    reason: Annotated[str, typer.Option(help="why (kept as the event's reason and in the audit trail)")],
) -> None:
    """Give up on failed events whose cause cannot be fixed (HR sends a corrected event instead):
    they become rejected, and the person's later events stop waiting behind them."""
    from provisioner.intake import failures

    if not reason.strip():
        fail("--reason must say why the events are discarded")
    db = open_db(settings())
    try:
        with db.transaction() as session:
            done = failures.discard(session, event_ids, reason=reason.strip(), by=_operator())
    except failures.NotFailed as exc:
        fail(f"{exc}; nothing was discarded")
    for r in done:
        console.print(f"{r.event_id} ({r.employee_id}) discarded; {r.waiting} later event(s) of this person "
                      "no longer wait", highlight=False, soft_wrap=True)
