"""``provisioner hr-sources check`` and ``provisioner hr-sources dry-run``: validate the HR
source files (``file:line`` errors, like the policies) and show the events a webhook payload
would become, storing nothing. Registered on the ``hr-sources`` sub-app (``cli/hr_sources.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from provisioner.cli.common import console, fail, settings

DirOption = Annotated[Optional[Path], typer.Option(
    "--dir", help="the folder of source files (default PROVISIONER_HR_SOURCES_DIR, ./hr_sources)")]


def _load(directory: Path | None) -> tuple[Path, dict[str, Any]]:
    """The sources, or every problem as ``file:line: field: reason`` and exit 1."""
    from provisioner.hr_sources.declarations import load_sources
    from provisioner.targets.config import ConfigError

    folder = directory or settings().hr_sources_dir
    try:
        return folder, load_sources(folder)
    except ConfigError as exc:
        for line in exc.problems:
            console.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _ways_in(source: Any) -> list[str]:
    ways = []
    if source.bulk_upload is not None:
        ways.append("bulk_upload: POST /hr/bulkUpload")
    if source.webhook is not None:
        ways.append(f"webhook: POST /hr/webhooks/{source.name} ({source.webhook.signature.scheme.value})")
    if source.snapshot is not None:
        ways.append("snapshot")
    return ways


def _secret_state(source: Any) -> str:
    from provisioner.hr_sources.webhooks.signatures import SecretUnavailable, read_secret

    if source.webhook is None:
        return "-"
    try:
        read_secret(source.webhook.signature)
    except SecretUnavailable as exc:
        return f"missing: {exc}"
    return "readable"


def check(directory: DirOption = None,
          as_json: Annotated[bool, typer.Option("--json", help="the sources as JSON")] = False) -> None:
    """Validate every HR source file: errors as file:line: field: reason (exit 1), else the
    sources and their ways in (a webhook's secret must be readable where the service runs)."""
    folder, sources = _load(directory)
    rows = [{"source": s.name, "ways_in": _ways_in(s), "webhook_secret": _secret_state(s)}
            for s in sources.values()]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"HR sources in {folder}")
    for col in ("source", "ways in", "webhook secret"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["source"], "\n".join(row["ways_in"]), row["webhook_secret"])
    console.print(table)
    console.print(f"ok: {len(rows)} HR source(s)")


def dry_run(source: Annotated[str, typer.Argument(help="the source's name (its file's stem unless it says `name:`)")],
            payload: Annotated[Path, typer.Argument(help="a JSON file holding the HR system's payload")],
            directory: DirOption = None) -> None:
    """Show the HR events (JSON) a webhook payload would become, validated as POST
    /hr/webhooks/SOURCE validates them; nothing is stored and no signature is checked."""
    from provisioner.clock import utcnow
    from provisioner.hr_sources.webhooks import mapping
    from provisioner.intake import validation
    from provisioner.intake.schemas import EffectiveWindow

    cfg = settings()
    _, sources = _load(directory)
    declared = sources.get(source)
    if declared is None or declared.webhook is None:
        with_webhook = sorted(n for n, s in sources.items() if s.webhook is not None)
        fail(f"no HR source {source!r} with a webhook section (those with one: {', '.join(with_webhook) or 'none'})")
    try:
        body = payload.read_bytes()
    except OSError as exc:
        fail(f"cannot read {payload}: {exc.strerror} (give the path of a JSON file)")
    window = EffectiveWindow(utcnow(), cfg.hr_effective_past_days, cfg.hr_effective_future_days)
    try:
        mapped = mapping.apply(declared.webhook, declared.name, validation.decode_json(body), window=window)
    except validation.Invalid as exc:
        for error in exc.errors:
            console.print(f"{payload}: {error.field}: {error.message}", highlight=False, soft_wrap=True)
        if exc.total > len(exc.errors):
            console.print(f"... {exc.total - len(exc.errors)} more", highlight=False)
        raise typer.Exit(1) from None
    console.print_json(json.dumps({
        "source": declared.name,
        "events": [event.model_dump(mode="json", exclude_unset=True) for event in mapped.events],
        "ignored": [{"record": i.record, "reason": i.reason} for i in mapped.ignored],
    }))


def register(app: typer.Typer) -> None:
    """Put ``check`` and ``dry-run`` on the ``hr-sources`` sub-app."""
    app.command("check")(check)
    app.command("dry-run")(dry_run)
