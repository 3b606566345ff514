"""Run the Graph sandbox as a standalone HTTP server (``provisioner sandbox graph --port N``).

Point the service at ``http://{host}:{port}/v1.0``; the tenant starts empty (create groups and
users through the API) and lives as long as the process.
"""

from __future__ import annotations

import uvicorn

from provisioner.sandbox.graph.app import GraphSandbox


def serve(
    host: str = "127.0.0.1",
    port: int = 8400,
    *,
    scale: float = 1.0,
    throttle: bool = True,
    token: str | None = None,
    tenant_size: int = 100,
) -> None:
    """Serve a new :class:`GraphSandbox` with uvicorn until interrupted."""
    sandbox = GraphSandbox(scale=scale, throttle=throttle, tenant_size=tenant_size, token=token)
    uvicorn.run(sandbox.app, host=host, port=port, log_level="warning")
