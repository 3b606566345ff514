"""The ``provisioner`` command."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from provisioner.change_control.cli import holds_app, rollouts_app
from provisioner.cli.approvals import approvals_app, sod_app
from provisioner.cli.bench import bench_app
from provisioner.cli.common import console, fail, open_db, run, settings
from provisioner.cli.events import events_app, print_person_events
from provisioner.cli.hr_import import import_csv
from provisioner.cli.hr_sources import hr_sources_app
from provisioner.cli.policy import policy_app
from provisioner.cli.targets import runtime as _runtime
from provisioner.cli.targets import targets_app
from provisioner.scim.cli import scim_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Identity lifecycle provisioning: HR events drive Entra ID and SCIM apps.")
ops_app = typer.Typer(no_args_is_help=True, help="The durable operation queue.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
evidence_app = typer.Typer(no_args_is_help=True, help="Revocation evidence for auditors.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Local emulators for development.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for auditors and admins.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
for sub, name in ((ops_app, "ops"), (audit_app, "audit"), (evidence_app, "evidence"),
                  (policy_app, "policy"), (sandbox_app, "sandbox"), (token_app, "token"),
                  (targets_app, "targets"), (db_app, "db"), (bench_app, "bench")):
    app.add_typer(sub, name=name)
app.add_typer(scim_app, name="scim", help="The SCIM 2.0 endpoint's client tokens.")
app.add_typer(events_app, name="events")
app.add_typer(approvals_app, name="approvals")
app.add_typer(sod_app, name="sod")
app.add_typer(holds_app, name="holds")  # change control (provisioner/change_control)
app.add_typer(rollouts_app, name="rollouts")
app.add_typer(hr_sources_app, name="hr-sources")  # provisioner/cli/hr_sources.py: check, dry-run, pull, snapshots


# -- serving -------------------------------------------------------------------------------------
@app.command()
def serve(host: Annotated[Optional[str], typer.Option(help="bind address")] = None,
          port: Annotated[Optional[int], typer.Option(help="port")] = None,
          workers: Annotated[bool, typer.Option(help="also run workers and the scheduler "
                                                "(--no-workers: API only, scale out with 'provisioner worker')")] = True) -> None:
    """Run the API, the workers and the scheduler in one process."""
    import asyncio
    import signal

    import uvicorn

    from provisioner.logs import configure

    cfg = settings()
    configure(cfg.log_level, cfg.log_format)
    rt = _runtime()

    async def main() -> None:
        stop = asyncio.Event()
        # SIGTERM/SIGINT: uvicorn stops accepting, gives open requests a few seconds, then the
        # background work is stopped (the worker records or gives back what it holds).
        server = uvicorn.Server(uvicorn.Config(rt.create_app(), host=host or cfg.host,
                                               port=port or cfg.port, log_config=None, access_log=False,
                                               timeout_graceful_shutdown=max(1, round(cfg.stop_grace_seconds))))
        logging.getLogger("provisioner.console").info(
            "IT console on http://%s:%s/console (sign in with an API token: provisioner token create NAME "
            "--scope approver|viewer|auditor|admin)", host or cfg.host, port or cfg.port)
        background = asyncio.create_task(rt.run_background(stop) if workers else stop.wait())
        rollout = asyncio.create_task(rt.start(stop))  # a changed policy set, beside serving
        rt.reload_on_sighup()
        # uvicorn handles SIGTERM/SIGINT while it serves, then restores these handlers and sends
        # the signal again: it reaches this one (not the default, which would end the process
        # before the background work has stopped).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(rt.request_stop, stop))
        try:
            await server.serve()
        finally:
            rt.request_stop(stop)
            await background
            await rollout
            await rt.aclose()

    run(main())


@app.command()
def worker() -> None:
    """Run only workers (add processes like this one against PostgreSQL to scale out)."""
    import asyncio
    import signal

    from provisioner.logs import configure

    cfg = settings()
    configure(cfg.log_level, cfg.log_format)
    rt = _runtime()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rt.request_stop, stop)
        rt.reload_on_sighup()
        try:
            await asyncio.gather(rt.start(stop), rt.run_background(stop, events=True, reconcile=False))
        finally:
            await rt.aclose()

    run(main())


@app.command()
def demo(keep: Annotated[bool, typer.Option(help="keep the temporary folder")] = False) -> None:
    """Run the whole story on SQLite with the in-process Graph sandbox."""
    from provisioner.demo.story import run_demo

    raise typer.Exit(run(run_demo(keep=keep)))


# -- HR data -------------------------------------------------------------------------------------
app.command("import")(import_csv)  # provisioner/cli/hr_import.py (--snapshot, --terminate-missing)


@app.command()
def plan(employee_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Preview a person's plan (now, and after each pending event) without applying it."""
    from provisioner.planner.preview import UnknownEmployee, preview

    rt = _runtime()
    try:
        steps = preview(rt.db, rt.ctx, employee_id)
    except UnknownEmployee as exc:
        fail(str(exc))
    if as_json:
        console.print_json(json.dumps(steps, default=str))
        return
    for step in steps:
        table = Table(title=f"{employee_id} after {step['after']}" +
                      (f" (state {step.get('state')}, {step.get('kind')})" if "state" in step else "") +
                      (f"\nlogin {step['login']}" if step.get("login") else ""))
        for col in ("target", "account", "login", "operation", "group", "why"):
            table.add_column(col)
        if "rejected" in step:
            table.add_row("-", "-", "-", "rejected", "", step["rejected"])
        for held in step.get("held", []):
            table.add_row(held["target"], "-", "", f"{held['kind']} (HELD)", held["group"] or "",
                          f"mass-change hold {held['hold_id']} ({held['cause']}): 'provisioner holds show "
                          f"{held['hold_id']}'")
        for target, t in step.get("targets", {}).items():
            login = t.get("login") or ""
            if not t["operations"]:
                table.add_row(target, f"{t['account']} -> {t['desired_account']}", login, "(no change)", "", "")
            for op in t["operations"]:
                table.add_row(target, f"{t['account']} -> {t['desired_account']}", login, op["kind"],
                              op["group"] or "", op["reason"])
        console.print(table)
        for wait in step.get("awaiting_approval", []):
            what = (f"blocked by separation of duties ({wait['rule']})" if wait["kind"] == "sod"
                    else "rejected: not asked again while the attributes stay the same"
                    if wait["status"] == "rejected" else "awaiting approval")
            ref = f" (request {wait['request_id']})" if wait.get("request_id") else ""
            console.print(f"  {wait['target']}:{wait['group']} {what}{ref}", highlight=False)


# -- queue ---------------------------------------------------------------------------------------
@ops_app.command("list")
def ops_list(dead: Annotated[bool, typer.Option("--dead", help="only dead-lettered")] = False,
             status: Annotated[Optional[str], typer.Option(help="filter by status")] = None,
             limit: int = 50) -> None:
    """List operations, newest first."""
    from provisioner.queue import repository

    db = open_db(settings())
    with db.transaction() as session:
        rows = repository.listing(session, "dead" if dead else status, limit)
        counts = repository.counts(session)
    table = Table(title="operations " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for col in ("id", "status", "target", "kind", "group", "identity", "attempts", "next attempt", "last error"):
        table.add_column(col, overflow="fold")
    for op in rows:
        table.add_row(str(op.id), op.status, op.target, op.kind, op.group_key or "", op.identity_id[:8],
                      str(op.attempts), op.next_attempt_at.isoformat(timespec="seconds"), op.last_error or "")
    console.print(table)


@ops_app.command("replay")
def ops_replay(op_id: Annotated[Optional[int], typer.Argument(help="operation id")] = None,
               all_: Annotated[bool, typer.Option("--all", help="every dead operation")] = False) -> None:
    """Send dead-lettered operations back to the queue."""
    from provisioner.queue.service import ReplayError, replay

    if (op_id is None) == (not all_):
        fail("give an operation id or --all (see 'provisioner ops list --dead')")
    db = open_db(settings())
    try:
        with db.transaction() as session:
            ids = replay(session, None if all_ else op_id)
    except ReplayError as exc:
        fail(str(exc))
    console.print(f"replaying {len(ids)} operation(s): {', '.join(map(str, ids[:20]))}"
                  f"{' ...' if len(ids) > 20 else ''}")


# -- audit and evidence --------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[Optional[list[str]], typer.Option(
        help="SEQ:HASH of an earlier chain head, or an evidence manifest carrying one (repeatable): "
             "finds deleted newest records and a wiped chain")] = None,
) -> None:
    """Check the audit chain; names every edited, inserted or deleted record."""
    from provisioner.audit.anchor import AnchorError, parse_anchor
    from provisioner.audit.verify import verify_chain

    try:
        anchors = [parse_anchor(value) for value in anchor or []]
    except AnchorError as exc:
        fail(str(exc))
    db = open_db(settings())
    with db.transaction() as session:
        report = verify_chain(session, anchors)
    if report.ok:
        checked = f"; {report.anchors} anchor(s) matched" if report.anchors else ""
        console.print(f"ok: {report.records} audit records, chain intact; head {report.head}{checked}",
                      highlight=False)
        return
    for problem in report.problems:
        console.print(f"[red]TAMPERED[/] {problem}", highlight=False)
    if report.key_problem:
        fail(report.key_problem, code=1 if report.problems else 2)
    raise typer.Exit(1)


@evidence_app.command("export")
def evidence_export(
    from_: Annotated[str, typer.Option("--from", help="date (start of that day) or RFC 3339 time; UTC "
                                       "unless an offset is given")],
    to: Annotated[str, typer.Option("--to", help="date (includes that whole day) or RFC 3339 time "
                                    "(exclusive); UTC unless an offset is given")],
    format: Annotated[str, typer.Option(help="csv or json")] = "csv",
    out: Annotated[Path, typer.Option(help="folder for the export and its manifest")] = Path("evidence"),
) -> None:
    """Export revocation evidence with a manifest carrying the export's SHA-256."""
    from provisioner.evidence import service
    from provisioner.evidence.period import PeriodError, last_day, parse_period

    if format not in ("csv", "json"):
        fail(f"--format must be csv or json, not {format!r}")
    try:
        start, end = parse_period(from_, to)
    except PeriodError as exc:
        fail(str(exc))
    db = open_db(settings())
    with db.transaction() as session:
        records = service.revocations(session, start, end)
        audit_head = service.audit_anchor(session)
    body = (service.to_csv(records) if format == "csv" else service.to_json(records)).encode()
    out.mkdir(parents=True, exist_ok=True)
    name = f"revocations-{start.date()}-{last_day(end)}.{format}"
    (out / name).write_bytes(body)
    manifest = service.manifest(body, filename=name, start=start, end=end, count=len(records), fmt=format,
                                audit_head=audit_head)
    (out / f"{name}.manifest.json").write_text(json.dumps(manifest, indent=2))
    unverified = sum(not r["all_verified"] for r in records)
    console.print(f"{len(records)} leaver(s) -> {out / name} (sha256 {manifest['sha256']}); "
                  f"{unverified} not verified")


# -- tokens, targets, db, sandbox, reconcile -------------------------------------------------------
@token_app.command("create")
def token_create(name: str, scope: Annotated[str, typer.Option(
        help="admin, approver (decides approvals), auditor (evidence, reads) or viewer (reads)")] = "auditor") -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    from provisioner.tokens.service import ROLES, TokenError, create_token

    if scope not in ROLES:
        fail(f"--scope must be one of {', '.join(ROLES)} (SCIM client tokens: 'provisioner scim token create')")
    db = open_db(settings())
    try:
        with db.transaction() as session:
            token = create_token(session, name, {scope})
    except TokenError as exc:
        fail(str(exc))
    console.print(token, highlight=False)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    from provisioner.tokens.service import TokenError, revoke_token

    db = open_db(settings())
    try:
        with db.transaction() as session:
            revoke_token(session, name)
    except TokenError as exc:
        fail(str(exc))
    console.print(f"revoked {name}")


@app.command()
def reconcile(fix: Annotated[bool, typer.Option(help="remove unknown members of managed groups and "
                                                   "re-plan people whose access drifted")] = False,
              as_json: Annotated[bool, typer.Option("--json")] = False,
              full: Annotated[bool, typer.Option(help="read every target whole, not only what changed "
                                                      "since the last run")] = False) -> None:
    """Compare each target with what the service knows; report (and with --fix correct) drift.
    Exit 0: no drift; 1: drift found; 2: a target could not be read or a fix failed."""
    from provisioner.reconcile.service import ReadRetry
    from provisioner.reconcile.service import reconcile as do_reconcile

    rt = _runtime()

    async def main():
        try:
            report = await do_reconcile(rt.db, rt.ctx, rt.connectors, fix=fix,
                                        max_removals=rt.settings.reconcile_max_removals,
                                        retry=ReadRetry.from_settings(rt.settings), full=full)
            if fix and report.replanned:
                await rt.drain()
            return report
        finally:
            await rt.aclose()

    report = run(main())
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        raise typer.Exit(report.exit_code)
    table = Table(title=f"drift: {len(report.drift)} item(s)", title_justify="left")
    for col in ("target", "group", "kind", "account", "employee", "remote id", "action"):
        table.add_column(col, overflow="fold")
    for d in report.drift:
        kind = f"{d.kind} ({d.change})" if d.change else d.kind
        table.add_row(d.target, d.group or "", kind, d.name(), d.employee_id or "", d.remote_id or "", d.action)
    console.print(table, highlight=False)
    if fix:
        console.print(f"{report.removed} unknown member(s) removed and verified, {report.replanned} person(s) "
                      f"re-planned, {report.incidents} revocation incident(s) opened", highlight=False)
    for e in report.errors:
        console.print(f"[red]{e}[/]", highlight=False)
    raise typer.Exit(report.exit_code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations (SQLite or PostgreSQL)."""
    open_db(settings(), migrate=True)
    console.print("database at the latest schema")


@sandbox_app.command("graph")
def sandbox_graph(port: int = 8400, host: str = "127.0.0.1",
                  scale: Annotated[float, typer.Option(help="divide Graph's throttle windows by this")] = 1.0,
                  throttle: bool = True,
                  token_env: Annotated[str, typer.Option(help="variable holding the accepted bearer token")] = "PROVISIONER_SANDBOX_TOKEN") -> None:
    """Serve the Graph v1.0 sandbox standalone (for `provisioner serve` against targets/entra.yaml),
    with the managed groups of the Entra targets in targets/ already created and their
    accounts.domain verified."""
    import os

    from provisioner.sandbox.graph.serve import serve as serve_sandbox
    from provisioner.targets.config import ConfigError, load_targets

    try:
        targets = load_targets(settings().targets_dir)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc.problems[0]}")
    groups = [(g.name, g.id) for t in targets.values() if t.kind == "entra" for g in t.managed_groups]
    console.print(f"Graph sandbox on http://{host}:{port}/v1.0 with {len(groups)} managed group(s)")
    domains = sorted({t.accounts.domain for t in targets.values() if t.kind == "entra"})
    serve_sandbox(host, port, scale=scale, throttle=throttle, token=os.environ.get(token_env) or None,
                  groups=groups, verified_domains=domains or None)


@sandbox_app.command("oidc")
def sandbox_oidc(port: int = 8443, host: str = "127.0.0.1",
                 tenant: Annotated[str, typer.Option(help="the tenant path segment of the authority")] = "sandbox",
                 client_id: Annotated[str, typer.Option(help="the console's client id")] = "provisioner-console",
                 redirect_uri: Annotated[list[str] | None, typer.Option(
                     help="a registered redirect URI (repeatable)")] = None,
                 secret_env: Annotated[str, typer.Option(help="variable holding the client secret (unset: none checked)")]
                 = "PROVISIONER_CONSOLE_OIDC_CLIENT_SECRET",
                 tls_dir: Annotated[Path, typer.Option(help="where the generated CA (ca.pem) and certificate go")]
                 = Path(".sandbox-oidc")) -> None:
    """Serve the sandbox OpenID Connect authority over HTTPS (discovery, a user picker, token, JWKS)
    for console sign-in with msal; the CA it generates is written to TLS_DIR/ca.pem."""
    import os

    from provisioner.sandbox.oidc.app import OidcAuthority
    from provisioner.sandbox.oidc.serve import serve as serve_oidc
    from provisioner.sandbox.oidc.users import SandboxClient

    uris = tuple(redirect_uri or [f"https://{host}:{settings().port}/console/auth/callback",
                                  f"http://{host}:{settings().port}/console/auth/callback"])
    client = SandboxClient(client_id, uris, os.environ.get(secret_env) or None)
    sandbox = OidcAuthority(tenant=tenant, clients=(client,))
    root = f"https://{host}:{port}"
    console.print(f"OIDC sandbox authority on {sandbox.authority_url(root)} (issuer {sandbox.issuer(root)})")
    console.print(f"  PROVISIONER_CONSOLE_OIDC_AUTHORITY={sandbox.authority_url(root)}")
    console.print(f"  PROVISIONER_CONSOLE_OIDC_CLIENT_ID={client_id}")
    console.print(f"  PROVISIONER_CONSOLE_OIDC_CA_FILE={(tls_dir / 'ca.pem').resolve()}")
    console.print(f"  redirect URIs: {', '.join(uris)}")
    serve_oidc(sandbox, host, port, tls_dir=tls_dir)


@app.command()
def identity(employee_id: str) -> None:
    """Show one person: state, attributes, accounts, memberships, transitions, operations."""
    from provisioner.identities import repository
    from provisioner.queue import repository as queue

    db = open_db(settings())
    with db.transaction() as session:
        person = repository.by_employee_id(session, employee_id)
        if person is None:
            console.print(f"no identity for employee {employee_id!r}", highlight=False)
            if not print_person_events(session, employee_id):  # e.g. an update for someone never hired
                fail(f"no identity and no HR events for employee {employee_id!r} (check the id)")
            return
        console.print(f"[bold]{person.display_name}[/] ({employee_id}) state={person.state} "
                      f"user_name={person.user_name} department={person.department} title={person.title}")
        for target, acc in repository.accounts(session, person.id).items():
            console.print(f"  {target}: account {acc.remote_id} {'enabled' if acc.enabled else 'disabled'}"
                          f"{' (linked)' if acc.linked else ''}")
        for target, groups in repository.memberships(session, person.id).items():
            console.print(f"  {target} groups: {', '.join(sorted(groups))}")
        for t in repository.transitions(session, person.id):
            mark = "ok" if t.accepted else "REJECTED"
            console.print(f"  {t.at.isoformat(timespec='seconds')} {t.event_type}: {t.from_state} -> "
                          f"{t.to_state} {mark} {t.reason or ''}")
        print_person_events(session, employee_id)  # superseded and rejected ones with their reasons
        for op in queue.for_identity(session, person.id)[-20:]:
            console.print(f"  op {op.id} {op.target} {op.kind} {op.group_key or ''} {op.status}"
                          + (f" (mass-change hold {op.hold_id})" if op.status == "held" else ""))


if __name__ == "__main__":  # pragma: no cover
    app()
