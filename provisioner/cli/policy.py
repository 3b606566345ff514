"""``provisioner policy``: check the policy files, preview a policy change for the whole
population, roll it out, and list the rollouts so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, open_db, settings

policy_app = typer.Typer(no_args_is_help=True, help="Role policies under policies/.")
SHOWN = 10  # people named per group in the table (--json names everyone)


@policy_app.command("check")
def policy_check() -> None:
    """Validate every policy and target file; errors as file:line: reason."""
    from provisioner.policies.loader import load_policies
    from provisioner.targets.config import ConfigError, load_targets

    cfg = settings()
    problems: list[str] = []
    targets = {}
    try:
        targets = load_targets(cfg.targets_dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        policies = load_policies(cfg.policies_dir, targets or None)
    except ConfigError as exc:
        problems.extend(exc.problems)
        policies = []
    if problems:
        for line in problems:
            console.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"ok: {len(policies)} policies, {len(targets)} target(s)")
    if any(p.conflicts for p in policies):
        _conflicts_held(cfg, policies, targets)


def _conflicts_held(cfg, policies, targets) -> None:
    """Separation of duties: name the people who hold a conflict now (exit 1 if one has no
    exception)."""
    from provisioner.change_control.sod_service import held_conflicts
    from provisioner.cli.approvals import _print_held
    from provisioner.planner.service import PlanningContext

    db = open_db(cfg)
    try:
        with db.read() as session:
            held = held_conflicts(session, PlanningContext(policies=policies, targets=targets))
    finally:
        db.dispose()
    rules = sum(len(p.conflicts) for p in policies)
    if not held:
        console.print(f"separation of duties: {rules} rule(s), nobody holds a conflict")
        return
    _print_held(held)
    if any(not h["exception"] for h in held):
        console.print("people above hold a conflict without an exception: remove a group, fix the policy, or "
                      "grant a time-bound exception ('provisioner sod exception grant')", highlight=False)
        raise typer.Exit(1)


def _context(directory: Path):
    """The planning context for the policies in ``directory`` and the configured targets; a
    problem in any file is printed as file:line: reason (exit 1), as ``policy check`` does."""
    from provisioner.planner.service import PlanningContext
    from provisioner.policies.loader import load_policies
    from provisioner.targets.config import ConfigError, load_targets

    if not directory.is_dir():
        fail(f"{directory}: no such policy folder")
    try:
        targets = load_targets(settings().targets_dir)
        policies = load_policies(directory, targets)
    except ConfigError as exc:
        for line in exc.problems:
            console.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    return PlanningContext(policies=policies, targets=targets)


def _names(people: list[dict[str, Any]], total: int) -> str:
    shown = ", ".join(p["employee_id"] or p["display_name"] or "?" for p in people[:SHOWN])
    return shown + (f" +{total - SHOWN} more" if total > SHOWN else "")


@policy_app.command("diff")
def policy_diff(directory: Annotated[Optional[Path], typer.Argument(
                    help="policy folder to compare (default: the configured one, PROVISIONER_POLICIES_DIR)")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Preview a policy folder's effect on everyone (per group: who gains, who loses); applies nothing."""
    from provisioner.rollouts import repository
    from provisioner.rollouts.diff import population_diff
    from provisioner.rollouts.fingerprint import fingerprint
    from provisioner.rollouts.models import RolloutStatus

    cfg = settings()
    directory = directory or Path(cfg.policies_dir)
    ctx = _context(directory)
    db = open_db(cfg)
    try:
        with db.read() as session:
            diff = population_diff(session, ctx)
            applied = repository.latest(session, RolloutStatus.APPLIED)
    finally:
        db.dispose()
    fp, counts, groups = fingerprint(ctx.policies, ctx.targets), diff.counts(), diff.as_json()
    applied_fp = applied.fingerprint if applied is not None else None
    if as_json:
        console.print_json(json.dumps({"policies_dir": str(directory), "fingerprint": fp,
                                       "applied_fingerprint": applied_fp, "counts": counts, "groups": groups}))
        return
    console.print(f"policy set {fp[:12]} ({directory}); last applied: "
                  f"{applied_fp[:12] if applied_fp else 'none'}{' (the same set)' if applied_fp == fp else ''}",
                  highlight=False)
    console.print(f"{counts['people']} of {counts['population']} people affected: "
                  f"{counts['gains']} membership(s) gained, {counts['losses']} lost", highlight=False)
    if not groups:
        return
    table = Table()
    for col in ("target", "group", "gain", "lose", "who gains", "who loses"):
        table.add_column(col, overflow="fold")
    for target, by_group in groups.items():
        for group, g in by_group.items():
            table.add_row(target, group, str(g["gain_count"]), str(g["lose_count"]),
                          _names(g["gain"], g["gain_count"]), _names(g["lose"], g["lose_count"]))
    console.print(table)


@policy_app.command("reload")
def policy_reload(wait: Annotated[bool, typer.Option(
        "--wait", help="follow the rollout's operations until done (a running 'provisioner serve' does "
                       "them); exit 1 if any ended dead")] = False) -> None:
    """Roll the configured policy files out now: re-plan everyone they change (then SIGHUP running processes)."""
    from provisioner.rollouts.service import roll_out

    cfg = settings()
    ctx = _context(Path(cfg.policies_dir))
    db = open_db(cfg)
    try:
        result = roll_out(db, ctx, cfg, trigger="reload")
    finally:
        db.dispose()
    if result.outcome == "unchanged":
        console.print(f"policy set {result.fingerprint[:12]} is already applied: nobody re-planned",
                      highlight=False)
        return
    if result.outcome == "busy":
        fail("another process is rolling out a policy set; try again when it is done")
    if result.outcome == "rejected":
        fail(f"policy set {result.fingerprint[:12]} was rejected by an approver ('provisioner rollouts list'): "
             "change the policies to make a new rollout")
    counts = result.counts
    verb = {"applied": "applied", "held": "held for approval (policy_rollout_max_auto): 'provisioner rollouts show "
            f"{result.rollout_id}', then approve or reject"}[result.outcome]
    console.print(f"policy set {result.fingerprint[:12]} {verb} (rollout {result.rollout_id}): "
                  f"{result.replanned} of {counts['population']} people re-planned, "
                  f"{counts['gains']} membership(s) to gain, {counts['losses']} to lose", highlight=False)
    console.print("send running 'provisioner serve' and 'provisioner worker' processes SIGHUP (or restart "
                  "them) so that they plan with this set too", highlight=False)
    if wait and result.outcome == "applied":
        from provisioner.cli.common import run
        from provisioner.cli.progress import Work, follow

        # The rollout's plans carry the trigger policy:<fingerprint> (provisioner/rollouts).
        db = open_db(cfg, migrate=False)
        try:
            code = run(follow(db, Work(triggers=[f"policy:{result.fingerprint[:12]}"])))
        finally:
            db.dispose()
        raise typer.Exit(code)


@policy_app.command("rollouts")
def policy_rollouts(limit: int = 20) -> None:
    """The policy sets seen, newest first: fingerprint, status, trigger and counts."""
    from provisioner.rollouts import repository

    db = open_db(settings())
    try:
        with db.read() as session:
            rows = repository.recent(session, limit)
    finally:
        db.dispose()
    table = Table(title="policy rollouts")
    for col in ("id", "fingerprint", "status", "trigger", "people", "gains", "losses", "created", "applied"):
        table.add_column(col)
    for r in rows:
        c = r.counts or {}
        table.add_row(str(r.id), r.fingerprint[:12], r.status, r.trigger, str(c.get("people", "")),
                      str(c.get("gains", "")), str(c.get("losses", "")), r.created_at.isoformat(timespec="seconds"),
                      r.applied_at.isoformat(timespec="seconds") if r.applied_at else "")
    console.print(table)
