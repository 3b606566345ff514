"""What an app's SCIM server offers (RFC 7643 §5 ServiceProviderConfig), with the target's
compatibility profile laid over it: the connector adapts to this, never to guesses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scim2_models import ServiceProviderConfig

from provisioner.targets.scim.config import Compatibility

# RFC 7644 §3.7.4 leaves the limits to the server; without them, stay small.
DEFAULT_MAX_OPERATIONS = 100
DEFAULT_MAX_PAYLOAD = 256 * 1024


@dataclass(frozen=True, slots=True)
class Capabilities:
    bulk: bool = False
    max_operations: int = DEFAULT_MAX_OPERATIONS
    max_payload: int = DEFAULT_MAX_PAYLOAD
    patch: bool = False
    group_patch: bool = False
    etag: bool = False
    filter: bool = True
    max_results: int = 100
    sort: bool = False

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def from_config(body: Any, profile: Compatibility) -> Capabilities:
    """Read a ServiceProviderConfig body; anything unreadable counts as not offered."""
    try:
        spc = ServiceProviderConfig.model_validate(body)
    except Exception:
        spc = None

    def supported(name: str) -> bool:
        part = getattr(spc, name, None) if spc is not None else None
        return bool(part is not None and part.supported)

    bulk = supported("bulk") and profile.bulk == "auto"
    patch = supported("patch") and profile.patch == "auto"
    max_ops = DEFAULT_MAX_OPERATIONS
    max_payload = DEFAULT_MAX_PAYLOAD
    if bulk and spc is not None and spc.bulk is not None:
        max_ops = int(spc.bulk.max_operations or DEFAULT_MAX_OPERATIONS)
        max_payload = int(spc.bulk.max_payload_size or DEFAULT_MAX_PAYLOAD)
    max_results = 100
    if spc is not None and spc.filter is not None and spc.filter.max_results:
        max_results = int(spc.filter.max_results)
    return Capabilities(
        bulk=bulk and max_ops > 0, max_operations=max(1, max_ops), max_payload=max(1024, max_payload),
        patch=patch, group_patch=supported("patch") and profile.group_patch == "auto",
        etag=supported("etag") and profile.etag == "auto",
        filter=spc is None or supported("filter"), max_results=max(1, max_results),
        sort=supported("sort"))
