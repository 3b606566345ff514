"""``provisioner holds ...`` and ``provisioner rollouts ...``: change-control decisions from the
command line. Only typer and rich at the top (tests/cli/test_startup.py); a decision made here is
recorded as ``cli:<NAME>`` (``--as NAME``, or the operating-system user: ``change_control.actors``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, open_db, planning_context, settings

holds_app = typer.Typer(no_args_is_help=True, help="Mass-change holds: list, show, release, cancel.")
rollouts_app = typer.Typer(no_args_is_help=True, help="Policy rollouts: list, show the diff, approve, reject.")
Comment = Annotated[Optional[str], typer.Option("--comment", help="why (kept in the audit trail)")]
As = Annotated[Optional[str], typer.Option("--as", help="who decides, recorded as cli:NAME (default: the os user)")]
AsJson = Annotated[bool, typer.Option("--json")]


def _who(name: str | None) -> str:
    import getpass

    from provisioner.change_control.actors import CLI, MAX_LENGTH, actor

    if name is not None and not 0 < len(name.strip()) <= MAX_LENGTH - len(CLI) - 1:
        fail(f"--as needs a name of 1 to {MAX_LENGTH - len(CLI) - 1} characters")
    return actor(CLI, name if name is not None else getpass.getuser())


def _print_json(data: Any) -> None:
    from pydantic import BaseModel

    def plain(value: Any) -> Any:
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)

    console.print_json(json.dumps(data, default=plain))


# -- holds -------------------------------------------------------------------------------------------
@holds_app.command("list")
def holds_list(status: Annotated[Optional[str], typer.Option(help="held, released or cancelled")] = None,
               limit: int = 100, as_json: AsJson = False) -> None:
    """Hold sets, newest first."""
    from provisioner.change_control.holds import service
    from provisioner.clock import utcnow

    if status not in (None, "held", "released", "cancelled"):
        fail(f"--status {status!r}: use held, released or cancelled")
    db = open_db(settings())
    try:
        with db.read() as session:
            rows = service.listing(session, status, limit, utcnow())
    finally:
        db.dispose()
    if as_json:
        _print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(title="hold sets")
    for col in ("id", "status", "target", "cause", "held ops", "held people", "people/population", "opened",
                "decided by", "comment"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), r.status, r.target, r.cause, str(r.held_operations), str(r.held_people),
                      f"{r.people}/{r.population}", r.opened_at.isoformat(timespec="seconds"), r.decided_by or "",
                      r.comment or "")
    console.print(table)


@holds_app.command("show")
def holds_show(hold_id: int, as_json: AsJson = False) -> None:
    """One hold set and its operations."""
    from provisioner.change_control.holds import service
    from provisioner.clock import utcnow

    db = open_db(settings())
    try:
        with db.read() as session:
            d = service.detail(session, hold_id, utcnow())
    except service.HoldError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    if as_json:
        _print_json(d.model_dump(mode="json"))
        return
    console.print(f"hold set {d.id}: {d.status}, {d.cause} on {d.target}: {d.people} of {d.population} people "
                  f"in the window (thresholds {d.thresholds}); {d.held_operations} operation(s) of "
                  f"{d.held_people} people held" + (f"; {d.status} by {d.decided_by}" if d.decided_by else ""),
                  highlight=False)
    table = Table()
    for col in ("op", "employee", "name", "kind", "group", "status", "why"):
        table.add_column(col, overflow="fold")
    for op in d.operations:
        table.add_row(str(op.id), op.employee_id or "", op.display_name or "", op.kind, op.group or "", op.status,
                      op.reason or "")
    console.print(table)


People = Annotated[Optional[list[str]], typer.Option(
    "--person", help="only this person's held operations (employee id, repeatable); the others stay held")]


def _hold_decision(action: str, hold_id: int, comment: str | None, who: str | None,
                   people: list[str] | None = None) -> None:
    from provisioner.change_control.holds import service
    from provisioner.clock import utcnow

    by = _who(who)
    db = open_db(settings())
    try:
        with db.transaction() as session:
            if people:
                decision = service.decide_people(session, hold_id, people, release_them=action == "release", by=by,
                                                 comment=comment, now=utcnow())
            else:
                decision = getattr(service, action)(session, hold_id, by, comment, utcnow())
    except service.HoldError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    verb = {"release": "released: the operations are back in the queue", "cancel": "cancelled: the operations "
            "are withdrawn"}[action]
    part = f" for {', '.join(decision.people)} (recorded as hold set {decision.hold.id})" if people else ""
    console.print(f"hold set {hold_id} {verb}{part} ({decision.operations} operation(s) of {len(decision.people)} "
                  f"people, by {by})", highlight=False)


@holds_app.command("release")
def holds_release(hold_id: int, comment: Comment = None, who: As = None, person: People = None) -> None:
    """Release a hold set, or some of its people: their operations run as planned (a running
    'provisioner serve' does them)."""
    _hold_decision("release", hold_id, comment, who, person)


@holds_app.command("cancel")
def holds_cancel(hold_id: int, comment: Comment = None, who: As = None, person: People = None) -> None:
    """Cancel a hold set, or some of its people: their operations are withdrawn; people's state
    stays as their source said."""
    _hold_decision("cancel", hold_id, comment, who, person)


# -- rollouts ----------------------------------------------------------------------------------------
@rollouts_app.command("list")
def rollouts_list(status: Annotated[Optional[str], typer.Option(help="e.g. awaiting_approval")] = None,
                  limit: int = 20, as_json: AsJson = False) -> None:
    """Policy rollouts, newest first."""
    from provisioner.change_control.rollouts.service import summary
    from provisioner.rollouts import repository

    db = open_db(settings())
    try:
        with db.read() as session:
            rows = [summary(r) for r in repository.recent(session, limit, status)]
    finally:
        db.dispose()
    if as_json:
        _print_json(rows)
        return
    table = Table(title="policy rollouts")
    for col in ("id", "fingerprint", "status", "people", "gains", "losses", "created", "decided by", "comment"):
        table.add_column(col, overflow="fold")
    for r in rows:
        c = r["counts"]
        table.add_row(str(r["id"]), r["fingerprint"][:12], r["status"], str(c.get("people", "")),
                      str(c.get("gains", "")), str(c.get("losses", "")), r["created_at"].isoformat(timespec="seconds"),
                      r["decided_by"] or "", r["comment"] or "")
    console.print(table)


@rollouts_app.command("show")
def rollouts_show(rollout_id: int,
                  target: Annotated[Optional[str], typer.Option(help="only this target")] = None,
                  group: Annotated[Optional[str], typer.Option(help="only this group")] = None,
                  person: Annotated[Optional[str], typer.Option(help="only this employee id")] = None,
                  as_json: AsJson = False) -> None:
    """A rollout's diff: per target and group who gains and who loses (or one person's changes)."""
    from provisioner.change_control.rollouts.service import view
    from provisioner.rollouts import repository

    db = open_db(settings())
    try:
        with db.read() as session:
            row = repository.get(session, rollout_id)
            if row is None:
                fail(f"no policy rollout {rollout_id} (see 'provisioner rollouts list')")
            data = view(row, target=target, group=group, person=person)
    finally:
        db.dispose()
    if as_json:
        _print_json(data)
        return
    c = data["counts"]
    console.print(f"rollout {data['id']} ({data['fingerprint'][:12]}): {data['status']}; {c.get('people', 0)} of "
                  f"{c.get('population', 0)} people, {c.get('gains', 0)} gain(s), {c.get('losses', 0)} loss(es)"
                  + (f"; by {data['decided_by']}" if data["decided_by"] else ""), highlight=False)
    if person is not None:
        changes = data["person"]["targets"]
        if not changes:
            console.print(f"{person}: no change in this rollout", highlight=False)
        for t, ch in changes.items():
            console.print(f"{person} in {t}: gains {', '.join(ch['gain']) or '-'}; loses {', '.join(ch['lose']) or '-'}",
                          highlight=False)
        return
    table = Table()
    for col in ("target", "group", "gain", "lose", "who gains", "who loses"):
        table.add_column(col, overflow="fold")
    for t, groups in data["diff"].items():
        for name, g in groups.items():
            table.add_row(t, name, str(g["gain_count"]), str(g["lose_count"]),
                          ", ".join(p["employee_id"] or "?" for p in g["gain"][:20]),
                          ", ".join(p["employee_id"] or "?" for p in g["lose"][:20]))
    console.print(table)


@rollouts_app.command("approve")
def rollouts_approve(rollout_id: int, comment: Comment = None, who: As = None) -> None:
    """Approve a held rollout: recorded, then everyone it affects is re-planned here (a running
    'provisioner serve' makes the changes)."""
    from provisioner.change_control.rollouts.service import RolloutDecisionError, approve

    by = _who(who)
    cfg = settings()
    ctx = planning_context(cfg)
    db = open_db(cfg)
    try:
        result = approve(db, ctx, cfg, rollout_id, by, comment)
    except RolloutDecisionError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    console.print(f"rollout {rollout_id} approved by {by}: {result.outcome}, {result.replanned} people re-planned",
                  highlight=False)


@rollouts_app.command("reject")
def rollouts_reject(rollout_id: int, comment: Comment = None, who: As = None) -> None:
    """Reject a held rollout: recorded; this policy set is not applied until the policies change."""
    from provisioner.change_control.rollouts.service import RolloutDecisionError, reject

    by = _who(who)
    db = open_db(settings())
    try:
        with db.transaction() as session:
            reject(session, rollout_id, by, comment)
    except RolloutDecisionError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    console.print(f"rollout {rollout_id} rejected by {by}: its policy set is not applied until the policies change",
                  highlight=False)
