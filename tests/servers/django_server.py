"""A small Django app on django-scim2 (PyPI, Python) as a real process: the project in
``django_scim/`` (configured as the library's docs say), SQLite in ``workdir``, migrated at start,
served by Django's ``runserver`` (threaded, no autoreload); SCIM root ``/scim/v2``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.servers.launch import RunningServer, free_port, launch

PROJECT = Path(__file__).resolve().parent / "django_scim"


def start(workdir: Path) -> RunningServer:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = secrets.token_hex(16)
    env = {"SCIM_DB_PATH": str(workdir / "django-scim2.sqlite3"), "SCIM_BEARER_TOKEN": token,
           "SCIM_NETLOC": f"127.0.0.1:{port}", "DJANGO_SETTINGS_MODULE": "scimproject.settings",
           "PYTHONDONTWRITEBYTECODE": "1"}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=PROJECT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    if migrated.returncode != 0:
        raise RuntimeError(f"django-scim2 app: migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    return launch("django-scim2", command, workdir=workdir, port=port, base_path="/scim/v2", token=token,
                  env=env, cwd=PROJECT)
