"""scim2-server (PyPI, Python) as a real process, run as its README says:
``scim2-server --hostname 127.0.0.1 --port P --bearer-token T``; SCIM root ``/v2``."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from tests.servers.launch import RunningServer, free_port, launch


def start(workdir: Path) -> RunningServer:
    port = free_port()
    token = secrets.token_hex(16)
    command = [str(Path(sys.executable).with_name("scim2-server")), "--hostname", "127.0.0.1",
               "--port", str(port), "--bearer-token", token]
    return launch("scim2-server", command, workdir=workdir, port=port, base_path="/v2", token=token)
