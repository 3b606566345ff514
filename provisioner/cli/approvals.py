"""``provisioner approvals`` and ``provisioner sod``: review and decide access that waits
(provisioner/change_control). Decisions made here record ``cli:<NAME>`` (``--by NAME``, or the
operating-system user) as who decided; the HTTP API records ``token:<name>``
(``change_control.actors``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, open_db, planning_context, settings

approvals_app = typer.Typer(no_args_is_help=True, help="Grants waiting for an approver (sensitive access).")
sod_app = typer.Typer(no_args_is_help=True, help="Separation of duties: blocked grants, conflicts, exceptions.")
exception_app = typer.Typer(no_args_is_help=True, help="Time-bound exceptions to a separation-of-duties rule.")
sod_app.add_typer(exception_app, name="exception")

By = Annotated[Optional[str], typer.Option("--by", help="who decides (recorded and audited as cli:NAME); "
                                                       "default the operating-system user")]
Comment = Annotated[Optional[str], typer.Option("--comment", "-m", help="why (required: recorded and audited)")]


def _actor(by: str | None) -> str:
    import getpass

    from provisioner.change_control.actors import CLI, MAX_LENGTH, actor

    if by is not None and not 0 < len(by.strip()) <= MAX_LENGTH - len(CLI) - 1:
        fail(f"--by needs a name of 1 to {MAX_LENGTH - len(CLI) - 1} characters")
    return actor(CLI, by if by is not None else getpass.getuser())


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not an RFC 3339 time (e.g. 2026-12-31T17:00:00Z)")
    if when.tzinfo is None:
        fail(f"{option}: give a time zone offset (e.g. 2026-12-31T17:00:00Z)")
    return when


def _runtime_ctx():
    cfg = settings()
    return cfg, planning_context(cfg)


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("id", "kind", "status", "employee", "target", "group", "policies / rule", "requested by",
                "age", "decided by", "comment", "expires"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["kind"], r["status"], r["employee_id"] or "", r["target"], r["group"],
                      r.get("rule") or ", ".join(r["policies"]), r["requested_by"] or r["trigger"],
                      f"{r['age_seconds']}s", r["decided_by"] or "", r["comment"] or "", r["expires_at"] or "")
    console.print(table, highlight=False)


@approvals_app.command("list")
def approvals_list(status: Annotated[str, typer.Option(help="pending, approved, rejected, expired, ...")] = "pending",
                   as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Grants waiting for a decision (or with --status, those decided so)."""
    from provisioner.change_control import approvals_service as service
    from provisioner.clock import utcnow

    db = open_db(settings())
    try:
        with db.read() as session:
            rows = service.listing(session, utcnow(), status=status)
    finally:
        db.dispose()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    _table(f"{len(rows)} request(s) {status}", rows)


@approvals_app.command("show")
def approvals_show(request_id: int) -> None:
    """One request: the person, the group, the policies granting it, the decision."""
    from provisioner.change_control import approvals_service as service
    from provisioner.clock import utcnow

    db = open_db(settings())
    try:
        with db.read() as session:
            found = service.show(session, request_id, utcnow())
    finally:
        db.dispose()
    if found is None:
        fail(f"no approval request {request_id} (see 'provisioner approvals list')")
    console.print_json(json.dumps(found))


def _decide(ids: list[int] | None, all_: bool, approve: bool, comment: str | None, expires: str | None,
            by: str | None) -> None:
    from provisioner.change_control import approvals_service as service
    from provisioner.clock import utcnow

    if bool(ids) == all_:
        fail("give request ids or --all (see 'provisioner approvals list')")
    until = _when(expires, "--expires")
    cfg, ctx = _runtime_ctx()
    db = open_db(cfg)
    try:
        with db.transaction() as session:
            outcome = service.decide(session, ctx, ids=None if all_ else ids, approve=approve, actor=_actor(by),
                                     comment=comment, expires_at=until, now=utcnow(),
                                     max_days=cfg.approval_max_days)
    except service.DecisionError as exc:
        fail(f"--{str(exc).replace('expires_at', 'expires')}")
    finally:
        db.dispose()
    verb = "approved" if approve else "rejected"
    console.print(f"{verb} {len(outcome.decided)} request(s): "
                  f"{', '.join(str(r['id']) for r in outcome.decided) or '-'}", highlight=False)
    for refusal in outcome.refused:
        console.print(f"[red]not decided[/] {refusal.reason}", highlight=False)
    if approve and outcome.decided:
        console.print("the grants are planned: a running 'provisioner serve' or 'provisioner worker' applies them",
                      highlight=False)
    if outcome.refused:
        raise typer.Exit(1)


@approvals_app.command("approve")
def approvals_approve(ids: Annotated[Optional[list[int]], typer.Argument(help="request ids")] = None,
                      all_: Annotated[bool, typer.Option("--all", help="every pending request")] = False,
                      comment: Comment = None,
                      expires: Annotated[Optional[str], typer.Option(help="the access ends then (RFC 3339)")] = None,
                      by: By = None) -> None:
    """Approve: the grants are applied (until --expires, if given)."""
    _decide(ids, all_, True, comment, expires, by)


@approvals_app.command("reject")
def approvals_reject(ids: Annotated[Optional[list[int]], typer.Argument(help="request ids")] = None,
                     all_: Annotated[bool, typer.Option("--all", help="every pending request")] = False,
                     comment: Comment = None, by: By = None) -> None:
    """Reject: not applied, and not asked again while the person's attributes stay the same."""
    _decide(ids, all_, False, comment, None, by)


@sod_app.command("list")
def sod_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Blocked grants, people holding a conflict, and exceptions in force."""
    from provisioner.change_control import approvals_service as service
    from provisioner.change_control import sod_service
    from provisioner.clock import utcnow

    cfg, ctx = _runtime_ctx()
    db = open_db(cfg)
    try:
        with db.read() as session:
            now = utcnow()
            blocked = service.listing(session, now, kind="sod")
            exceptions = service.listing(session, now, kind="sod", status="approved")
            held = sod_service.held_conflicts(session, ctx)
    finally:
        db.dispose()
    if as_json:
        console.print_json(json.dumps({"blocked": blocked, "exceptions": exceptions, "held": held}))
        return
    _table(f"{len(blocked)} grant(s) blocked by separation of duties", blocked)
    _table(f"{len(exceptions)} exception(s) in force", exceptions)
    _print_held(held)


def _print_held(held: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(held)} conflict(s) held now", title_justify="left")
    for col in ("employee", "rule", "groups", "exception until"):
        table.add_column(col, overflow="fold")
    for h in held:
        table.add_row(h["employee_id"] or h["display_name"] or "?", h["rule"],
                      ", ".join(f"{g['target']}:{g['group']}" for g in h["groups"]),
                      (h["exception_expires_at"] or "no expiry") if h["exception"] else "[red]none[/]")
    console.print(table, highlight=False)


@exception_app.command("grant")
def sod_exception_grant(employee_id: str, rule: str,
                        expires: Annotated[str, typer.Option(help="the exception ends then (RFC 3339); required")],
                        comment: Comment = None, by: By = None) -> None:
    """Let a person hold the groups a rule blocked for them, until --expires."""
    _exception(employee_id, rule, expires, comment, by, grant=True)


@exception_app.command("revoke")
def sod_exception_revoke(employee_id: str, rule: str, comment: Comment = None, by: By = None) -> None:
    """End a person's exception now: the excepted groups are removed."""
    _exception(employee_id, rule, None, comment, by, grant=False)


def _exception(employee_id: str, rule: str, expires: str | None, comment: str | None, by: str | None, *,
               grant: bool) -> None:
    from provisioner.change_control import sod_service
    from provisioner.change_control.approvals_service import DecisionError
    from provisioner.clock import utcnow

    until = _when(expires, "--expires") if grant else None
    cfg, ctx = _runtime_ctx()
    db = open_db(cfg)
    try:
        with db.transaction() as session:
            if grant:
                rows = sod_service.grant_exception(session, ctx, employee_id=employee_id, rule=rule,
                                                   actor=_actor(by), comment=comment, expires_at=until,
                                                   now=utcnow(), max_days=cfg.sod_exception_max_days)
            else:
                rows = sod_service.revoke_exception(session, ctx, employee_id=employee_id, rule=rule,
                                                    actor=_actor(by), comment=comment, now=utcnow())
    except DecisionError as exc:
        fail(f"--{str(exc).replace('expires_at', 'expires')}" if exc.field != "rule" else str(exc))
    except sod_service.SodError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    groups = ", ".join(f"{r['target']}:{r['group']}" for r in rows)
    if grant:
        console.print(f"exception to {rule} for {employee_id} until {until.isoformat()}: {groups} planned",
                      highlight=False)
    else:
        console.print(f"exception to {rule} for {employee_id} revoked: {groups} to be removed", highlight=False)
