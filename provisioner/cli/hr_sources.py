"""``provisioner hr-sources``: the HR sources under hr_sources/ (their ways in besides the
native signed format)."""

from __future__ import annotations

import typer

from provisioner.cli.hr_sources_check import register

hr_sources_app = typer.Typer(no_args_is_help=True, help="HR sources under hr_sources/: webhooks, bulk uploads, snapshots.")
register(hr_sources_app)  # check, dry-run (cli/hr_sources_check.py)
