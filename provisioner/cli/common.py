"""Shared CLI plumbing: settings, database, one-line errors.

The CLI modules import only typer and rich at the top: everything else (the database, the
settings, the SDKs) is imported inside the command that needs it, so ``provisioner --help``
and every ``<command> --help`` start at once (tests/cli/test_startup.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from provisioner.db import Database
    from provisioner.planner.service import PlanningContext
    from provisioner.settings import Settings

# Piped or captured output gets wide lines instead of wrapped table cells.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line saying what is wrong and how to fix it."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from provisioner.settings import get_settings

    try:
        return get_settings()
    except Exception as exc:  # pydantic's message names the variable
        fail(f"invalid PROVISIONER_* setting: {exc}".replace("\n", " "))


def open_db(cfg: Settings, *, migrate: bool = True) -> Database:
    from provisioner.db import Database
    from provisioner.migrations import upgrade

    try:
        if migrate:
            upgrade(cfg.database_url)
        return Database(cfg.database_url)
    except Exception as exc:
        from sqlalchemy.engine import make_url

        safe = make_url(cfg.database_url).render_as_string(hide_password=True)
        fail(f"cannot open database {safe!r}: {str(exc).splitlines()[0]} "
             "(check PROVISIONER_DATABASE_URL)")


def planning_context(cfg: Settings) -> PlanningContext:
    """The configured targets and policies, with the mass-change holds, as ``serve`` plans: what a
    command that plans or replays work goes through."""
    from pathlib import Path

    from provisioner.change_control.holds.service import hold_policy
    from provisioner.planner.service import PlanningContext
    from provisioner.policies.loader import load_policies
    from provisioner.targets.config import ConfigError, load_targets

    try:
        targets = load_targets(cfg.targets_dir)
        policies = load_policies(Path(cfg.policies_dir), targets)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc.problems[0]} (run 'provisioner policy check')")
    return PlanningContext(policies=policies, targets=targets, contract_end_timezone=cfg.contract_end_timezone,
                           holds=hold_policy(cfg, targets))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
