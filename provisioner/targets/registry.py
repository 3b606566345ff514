"""Build one connector per declared target. Tests and the demo may hand in an HTTP transport
per target (the in-process Graph or SCIM sandbox); production code never imports the sandbox."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from provisioner.targets.config import TargetConfig
from provisioner.targets.contract import Connector


def build_connector(config: TargetConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                    dry_run: bool = False) -> Connector:
    if config.kind == "entra":
        from provisioner.targets.entra.connector import (
            EntraConnector,  # msgraph is heavy to import
        )

        return EntraConnector.create(config, transport=transport, dry_run=dry_run)
    if config.kind == "scim":
        from provisioner.targets.scim.connector import ScimConnector

        return ScimConnector.create(config, transport=transport, dry_run=dry_run)
    raise ValueError(f"unknown target kind {config.kind!r}")


def build_connectors(targets: Mapping[str, TargetConfig], *,
                     transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
                     dry_run: bool = False) -> dict[str, Connector]:
    transports = transports or {}
    return {name: build_connector(cfg, transport=transports.get(name), dry_run=dry_run)
            for name, cfg in targets.items()}
