"""Microsoft Entra ID connector over the official msgraph-sdk (async).

``EntraConnector`` is loaded lazily: importing msgraph costs about 0.3 s and 33 MiB, which
modules that only need, say, the error mapping should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.targets.entra.connector import EntraConnector
    from provisioner.targets.entra.credentials import (
        StaticTokenCredential,
        build_credential,
    )

__all__ = ["EntraConnector", "StaticTokenCredential", "build_credential"]


def __getattr__(name: str) -> Any:
    if name == "EntraConnector":
        from provisioner.targets.entra.connector import EntraConnector

        return EntraConnector
    if name in ("StaticTokenCredential", "build_credential"):
        from provisioner.targets.entra import credentials

        return getattr(credentials, name)
    raise AttributeError(name)
