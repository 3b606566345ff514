"""The service's own SCIM 2.0 service-provider endpoint (RFC 7643, RFC 7644) at ``/scim/v2``.

Downstream apps (Entra ID, Okta, any SCIM client) read and write the service's identities and
groups through it. :func:`provisioner.scim.app.mount_scim` mounts it; ``provisioner scim token``
issues its bearer tokens.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mount_scim"]


def __getattr__(name: str) -> Any:
    # Loaded when first used, so ``provisioner scim --help`` does not load the endpoint.
    if name == "mount_scim":
        from provisioner.scim.app import mount_scim

        return mount_scim
    raise AttributeError(name)
