"""The third-party SCIM servers every lifecycle test runs against (tests/targets/test_scim_servers.py).
Adding one is one line: its name and its ``start(workdir) -> RunningServer``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.servers import django_server, scim2_server, scimmy_server
from tests.servers.launch import RunningServer

SERVERS: list[tuple[str, Callable[[Path], RunningServer]]] = [
    ("scim2-server", scim2_server.start),
    ("django-scim2", django_server.start),
    ("scimmy", scimmy_server.start),  # Node.js: scimmy + scimmy-routers on express
]
