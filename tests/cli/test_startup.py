"""`provisioner --help` and every `provisioner <command> --help` start without loading the
Graph SDK, the sandbox, the database layer or the web stack: the CLI modules import only
typer and rich at the top, the rest inside the command that needs it. (It took 61 s under
load when the Graph SDK was imported at start-up.) What is loaded is checked in a fresh
interpreter, after the help of every command has been shown in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from provisioner.demo.harness import REPO

HEAVY = ("msgraph", "kiota", "azure", "provisioner.sandbox", "sqlalchemy", "fastapi", "uvicorn",
         "alembic", "httpx", "scim2_models", "provisioner.targets", "provisioner.runtime")

_PROBE = r"""
import json, sys
import typer.main
from typer.testing import CliRunner
from provisioner.cli.main import app

def paths(group, prefix):
    for name, cmd in getattr(group, "commands", {}).items():
        yield prefix + [name]
        yield from paths(cmd, prefix + [name])

runner = CliRunner()
shown = []
for path in [[]] + list(paths(typer.main.get_command(app), [])):
    result = runner.invoke(app, path + ["--help"])
    assert result.exit_code == 0, (path, result.output)
    assert "Usage" in result.output, (path, result.output)
    shown.append(" ".join(path))
print(json.dumps({"shown": shown, "modules": sorted(sys.modules)}))
"""


def test_help_of_every_command_loads_no_sdk_sandbox_or_database_layer():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO)
    found = json.loads(out.stdout.splitlines()[-1])
    assert {"", "serve", "import", "policy rollouts", "bench lifecycle", "events list"} <= set(found["shown"])
    loaded = [m for m in found["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], f"--help loaded {loaded[:20]}"


def test_the_installed_command_prints_help_and_exits_0():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "provisioner", "--help"], env=env,
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "import" in out.stdout and "serve" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in ("msgraph", "kiota_abstractions", "azure", "sqlalchemy")}
