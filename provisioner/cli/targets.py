"""``provisioner targets``: the connected systems under targets/ (check them, forget what a
SCIM app's connector learned)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, open_db, run, settings

targets_app = typer.Typer(no_args_is_help=True, help="Connected systems under targets/.")


def runtime(**kw):
    """The service's runtime on the configured database (one line and exit 1 on a bad configuration)."""
    from provisioner.runtime import Runtime
    from provisioner.targets.config import ConfigError

    cfg = settings()
    try:
        return Runtime.load(cfg, db=open_db(cfg), **kw)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc.problems[0]} (run 'provisioner policy check')")


@targets_app.command("check")
def targets_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Connect to every target and report what it supports, changing nothing (dry-run transport);
    for SCIM apps also the write forms learned not to work (``learned_forms``)."""
    rt = runtime(dry_run=True)

    async def main():
        try:
            return [await c.check() for c in rt.connectors.values()]
        finally:
            await rt.aclose()

    healths = run(main())
    if as_json:
        console.print_json(json.dumps([{"target": h.name, "kind": h.kind, "reachable": h.reachable,
                                         "credentials_ok": h.credentials_ok, "capabilities": h.capabilities,
                                         "detail": h.detail} for h in healths], default=str))
    else:
        table = Table(title="targets")
        for col in ("target", "kind", "reachable", "credentials", "capabilities", "learned", "detail"):
            table.add_column(col, overflow="fold")
        for h in healths:
            caps = {k: v for k, v in h.capabilities.items() if k != "learned_forms"}
            table.add_row(h.name, h.kind, str(h.reachable), str(h.credentials_ok), json.dumps(caps),
                          _learned_summary(h.capabilities.get("learned_forms") or {}), h.detail)
        console.print(table)
    if not all(h.reachable and h.credentials_ok for h in healths):
        raise typer.Exit(1)


@targets_app.command("forget")
def targets_forget(target: str) -> None:
    """Forget the write forms learned not to work for TARGET (e.g. after the app was upgraded):
    the next start tries the best forms again, and learns again what still does not work."""
    from provisioner.targets.learned import repository as learned

    db = open_db(settings())
    with db.transaction() as session:
        count = learned.forget(session, target)
    console.print(f"forgot {count} learned form(s) of {target}; restart the workers to try them again")


def _learned_summary(learned: dict) -> str:
    """``member_remove: put (refused: filter, value_list)`` for each operation that learned."""
    lines = [f"{op}: {info['using']} (refused: {', '.join(info['refused'])})"
             for op, info in learned.items() if info.get("refused")]
    return "\n".join(lines) or "-"


