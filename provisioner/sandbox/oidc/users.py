"""Who can sign in at the sandbox authority, and which applications may ask."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

_NS = uuid.UUID("6f1c1f0e-3c55-4f7e-9d0a-5b0c6a4e2d11")


@dataclass(frozen=True)
class SandboxUser:
    """A person at the sandbox authority; ``roles`` are the app roles assigned to them (the
    ``roles`` claim of their ID token)."""

    username: str
    name: str
    roles: tuple[str, ...] = ()
    oid: str = ""

    def __post_init__(self) -> None:
        if not self.oid:
            object.__setattr__(self, "oid", str(uuid.uuid5(_NS, self.username.lower())))


@dataclass(frozen=True)
class SandboxClient:
    """An app registration: its client id, registered redirect URIs (exact match) and its
    credentials: a secret and/or a certificate (PEM; the client then authenticates with a signed
    client assertion). Neither: a public client, no client authentication."""

    client_id: str
    redirect_uris: tuple[str, ...] = field(default_factory=tuple)
    secret: str | None = None
    certificate_pem: str | None = None


DEFAULT_USERS: tuple[SandboxUser, ...] = (
    SandboxUser("ada.admin@sandbox.example", "Ada Admin", ("admin",)),
    SandboxUser("april.approver@sandbox.example", "April Approver", ("approver",)),
    SandboxUser("aude.auditor@sandbox.example", "Aude Auditor", ("auditor",)),
    SandboxUser("vic.viewer@sandbox.example", "Vic Viewer", ("viewer",)),
    SandboxUser("nora.norole@sandbox.example", "Nora Norole", ()),
)
