"""The checks Entra ID makes of a user's userPrincipalName and mailNickname, refused as Graph
refuses them: ``400 Request_BadRequest`` "Property userPrincipalName is invalid." (the form
third-party code records; Graph's body for this case is not documented). The rules themselves
are stated once, in :mod:`provisioner.identities.upn`; the tenant adds its verified domains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisioner.identities import upn
from provisioner.sandbox.graph.errors import bad_request

# The demo's and the tests' domain; a tenant also always has its initial onmicrosoft.com domain.
DEFAULT_VERIFIED_DOMAINS = ("example.com", "sandbox.onmicrosoft.com")


def invalid_property(name: str) -> Exception:
    return bad_request(f"Property {name} is invalid.")


class UserRules:
    """Checks a POST or PATCH /users body against Entra ID's rules for logins."""

    def __init__(self, verified_domains: Iterable[str] | None = None) -> None:
        self.verified_domains = {d.casefold() for d in (verified_domains or DEFAULT_VERIFIED_DOMAINS)}

    def verify_domain(self, domain: str) -> None:
        """Add a verified domain to the tenant (as an admin does in the Entra admin center)."""
        self.verified_domains.add(domain.casefold())

    def check(self, body: dict[str, Any]) -> None:
        if "userPrincipalName" in body:
            value = body["userPrincipalName"]
            if upn.problem(value) is not None:
                raise invalid_property("userPrincipalName")
            if value.partition("@")[2].casefold() not in self.verified_domains:
                # Entra's own wording for a domain the tenant has not verified.
                raise bad_request("The domain portion of the userPrincipalName property is invalid. "
                                  "You must use one of the verified domain names in your organization.")
        if "mailNickname" in body and upn.mail_nickname_problem(body["mailNickname"]) is not None:
            raise invalid_property("mailNickname")
