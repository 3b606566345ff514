"""``provisioner hr-sources``: the HR sources declared under hr_sources/ (provisioner/hr_sources),
their ways in besides the native signed format."""

from __future__ import annotations

import typer

from provisioner.cli.hr_sources_check import register
from provisioner.cli.hr_sources_pull import pull, snapshots
from provisioner.cli.hr_sources_tokens import token_app

hr_sources_app = typer.Typer(no_args_is_help=True, help="HR sources under hr_sources/ (bulk upload, webhook, "
                                                        "snapshot files).")
register(hr_sources_app)  # check, dry-run (cli/hr_sources_check.py)
hr_sources_app.command("pull")(pull)  # cli/hr_sources_pull.py
hr_sources_app.command("snapshots")(snapshots)
hr_sources_app.add_typer(token_app, name="token")  # issue, revoke (cli/hr_sources_tokens.py)
