"""Run the Graph sandbox as a standalone HTTP server (``provisioner sandbox graph --port N``).

Point the service at ``http://{host}:{port}/v1.0``. The tenant starts with the given groups
(the CLI passes the managed groups declared in ``targets/``) and lives as long as the process.
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
    groups: list[tuple[str, str | None]] = (),
    verified_domains: list[str] | None = None,
) -> None:
    """Serve a new :class:`GraphSandbox` with uvicorn until interrupted; ``groups`` are
    ``(display name, object id or None)`` pairs created first; ``verified_domains`` the tenant's."""
    sandbox = GraphSandbox(scale=scale, throttle=throttle, tenant_size=tenant_size, token=token,
                           verified_domains=verified_domains)
    for name, object_id in groups:
        sandbox.seed_group(name, id=object_id)
    uvicorn.run(sandbox.app, host=host, port=port, log_level="warning")
