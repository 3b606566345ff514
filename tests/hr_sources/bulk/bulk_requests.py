"""SCIM BulkRequests shaped like Microsoft's documented examples for Entra ID's API-driven
inbound provisioning (``POST .../synchronization/jobs/{id}/bulkUpload``)."""

from __future__ import annotations

import json
from typing import Any

SOURCE = "entra-inbound"  # the HR source the tests declare (conftest.py)
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:contoso:employee"


def worker(external_id: str, given: str, family: str, *, department: str = "Engineering",
           manager: str | None = None, active: bool = True, **custom: Any) -> dict[str, Any]:
    """One record as Microsoft's example has it (core, enterprise and a custom extension)."""
    enterprise: dict[str, Any] = {"employeeNumber": external_id, "costCenter": "4130",
                                  "organization": "Contoso", "division": "Theme Park", "department": department}
    if manager is not None:
        enterprise["manager"] = {"value": manager}
    data: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE, CUSTOM],
        "externalId": external_id,
        "userName": f"{given.lower()}.{family.lower()}@contoso.com",
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given,
                 "honorificPrefix": "Ms."},
        "displayName": f"{given} {family}",
        "nickName": given[:3],
        "emails": [{"value": f"{given.lower()}@contoso.com", "type": "work", "primary": True}],
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Redmond", "region": "WA",
                       "postalCode": "98052", "country": "USA", "primary": True}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": active,
        ENTERPRISE: enterprise,
    }
    if custom:
        data[CUSTOM] = custom
    return data


def leaver(external_id: str, **custom: Any) -> dict[str, Any]:
    """A minimal update as Microsoft documents it: externalId, active false (and a leave date)."""
    data: dict[str, Any] = {"schemas": [CORE, ENTERPRISE, CUSTOM], "externalId": external_id, "active": False}
    if custom:
        data[CUSTOM] = custom
    return data


def bulk(*records: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "bulkId": f"op-{i}-{r['externalId']}", "path": "/Users", "data": r}
                           for i, r in enumerate(records)],
            "failOnErrors": None}


def body(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode()
