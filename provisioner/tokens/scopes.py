"""Token scopes and what ``provisioner scim token create --scope`` accepts: no dependencies, so
the CLI can offer the choice without loading the SCIM endpoint."""

from __future__ import annotations

from enum import StrEnum

SCOPE_READ = "scim:read"
SCOPE_WRITE = "scim:write"


class TokenScope(StrEnum):
    """What ``token create --scope`` accepts."""

    read = "read"
    read_write = "read-write"

    def scopes(self) -> set[str]:
        """The token scopes this choice grants."""
        return {SCOPE_READ} if self is TokenScope.read else {SCOPE_READ, SCOPE_WRITE}
