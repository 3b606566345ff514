"""scimmy (Node.js): the bundled User (+ EnterpriseUser extension) and Group resource types with
ingress/egress/degress handlers over an in-memory store, served by scimmy-routers on express with
its bearer authentication handler, as both packages' documentation show (tests/servers/scimmy/).

Its npm dependencies are installed by ``make test`` (``npm ci --prefix tests/servers/scimmy``);
``start`` says how to install them when they are missing."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from tests.servers.launch import RunningServer, free_port, launch

HERE = Path(__file__).resolve().parent / "scimmy"
BASE_PATH = "/scim/v2"


def missing() -> str | None:
    """Why the server cannot start here (no node, or npm dependencies not installed), or None."""
    if shutil.which("node") is None:
        return "node is not installed: install Node.js 18+ (e.g. apt-get install nodejs npm)"
    if not (HERE / "node_modules" / "scimmy-routers").is_dir():
        return f"scimmy's npm dependencies are not installed: run `npm ci --prefix {HERE}` (make test does)"
    return None


def start(workdir: Path) -> RunningServer:
    reason = missing()
    if reason is not None:
        raise RuntimeError(reason)
    port = free_port()
    token = secrets.token_hex(16)
    server = launch("scimmy", ["node", str(HERE / "server.js"), str(port)], workdir=workdir, port=port,
                    base_path=BASE_PATH, token=token, env={"SCIM_TOKEN": token}, cwd=HERE)
    server.notes.update(language="JavaScript (Node.js)", library="scimmy + scimmy-routers (express 4)")
    return server
