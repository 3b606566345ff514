"""Every group a SCIM account is a direct member of, for the leaver's read-back.

In order of preference:

1. The User resource's ``groups`` attribute (RFC 7643 §4.1.2: readOnly, ``value``/``display``/
   ``type``); entries typed ``indirect`` are left out (only direct memberships can be removed).
2. When a server leaves ``groups`` out (it is optional, and some servers never fill it, such as
   scim2-server): ``GET /Groups?filter=members.value eq "{id}"`` (RFC 7644 §3.4.2.2, a filter on
   a sub-attribute of a multi-valued attribute), every page.
3. When the server offers no filtering (ServiceProviderConfig) or refuses that filter (400
   ``invalidFilter``, 501): every group listed with its members, page by page, matched here.
4. When that listing fails too: only the managed groups, read one by one as before; the
   read-back says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.targets.contract import Outcome, TargetError
from provisioner.targets.scim.listing import page_size
from provisioner.targets.scim.writes import filter_string

if TYPE_CHECKING:
    from provisioner.targets.scim.connector import ScimConnector

USER_GROUPS = "User.groups"
GROUPS_FILTER = "Groups filter members.value"
GROUPS_LISTED = "Groups listed with members"
MANAGED_ONLY = "managed groups only (the server neither lists User.groups nor filters Groups by members)"
FILTER_PAGE = 100


def groups_of_user(body: dict[str, Any]) -> dict[str, str] | None:
    """Direct groups (id -> display) from a User resource, or None when it has no ``groups``."""
    if "groups" not in body or not isinstance(body["groups"], list):
        return None
    found: dict[str, str] = {}
    for item in body["groups"]:
        if not isinstance(item, dict) or not item.get("value"):
            continue
        if str(item.get("type") or "direct").lower() == "indirect":
            continue
        found[str(item["value"])] = str(item.get("display") or "")
    return found


class GroupMemberships:
    """Reads the groups of accounts whose User resource did not list them; remembers a server
    that refuses the ``members.value`` filter (or the listing) so it is not asked again."""

    def __init__(self, connector: ScimConnector) -> None:
        self.connector = connector
        self.filter_refused = False
        self.listing_refused = False

    async def by_filter(self, remote_id: str) -> tuple[dict[str, str], str] | None:
        """Groups holding ``remote_id`` as a member (id -> displayName) and how that was read,
        or None when the server can answer neither a filter nor a listing."""
        caps = await self.connector.capabilities()
        if not self.filter_refused and caps.filter:
            expr = f"members.value eq {filter_string(remote_id)}"
            try:
                rows = await self.connector.search("Groups", expr, "id,displayName", FILTER_PAGE)
            except TargetError as exc:
                if exc.outcome != Outcome.BAD_REQUEST:
                    raise
                self.filter_refused = True
            else:
                return {str(r["id"]): str(r.get("displayName") or "") for r in rows if r.get("id")}, GROUPS_FILTER
        if self.listing_refused:
            return None
        try:
            # A read-back: never from a cached listing.
            rows = await self.connector.listings.rows(self.connector.read, "Groups", "id,displayName,members",
                                                      page_size(caps.max_results), fresh=True)
        except TargetError as exc:
            if exc.outcome != Outcome.BAD_REQUEST:
                raise
            self.listing_refused = True
            return None
        return {str(r["id"]): str(r.get("displayName") or "") for r in rows
                if r.get("id") and any(isinstance(m, dict) and str(m.get("value")) == remote_id
                                       for m in r.get("members") or [])}, GROUPS_LISTED
