"""The SCIM shapes of ``POST /hr/bulkUpload`` (RFC 7644 §3.7, as Entra's API-driven inbound
provisioning uses them): the BulkRequest envelope, and the BulkResponse answering it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisioner.hr_sources.bulk.mapping import CORE, ENTERPRISE

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"
MAX_OPERATIONS = 50  # as Entra's bulkUpload API


class HrBulkOperation(BaseModel):
    """One operation: a worker's record (``data``, a SCIM User with extensions)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["POST"] = Field(description="only POST: an update is the same POST with what changed")
    bulkId: str = Field(min_length=1, max_length=200, description="unique in the request")
    path: Literal["/Users"] = "/Users"
    data: dict[str, Any] = Field(description=f"a SCIM User: schemas lists {CORE} (and {ENTERPRISE}, custom "
                                             "extension URNs such as urn:contoso:employee); externalId is "
                                             "the worker's employee id")


class HrBulkRequest(BaseModel):
    """``{"schemas": [BulkRequest], "Operations": [...], "failOnErrors": null}``."""

    model_config = ConfigDict(extra="forbid")

    schemas: list[str] = Field(description=f"[{BULK_REQUEST!r}]", min_length=1,
                               json_schema_extra={"contains": {"const": BULK_REQUEST}})
    Operations: list[HrBulkOperation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    failOnErrors: int | None = Field(None, description="accepted and ignored: a request is all or nothing")


class HrBulkError(BaseModel):
    schemas: list[str] = [ERROR]
    status: str
    scimType: str | None = None
    detail: str


class HrBulkResult(BaseModel):
    method: str = "POST"
    bulkId: str | None = None
    status: str
    location: str | None = Field(None, description="where the record's fate is read (GET, the same token)")
    response: dict[str, Any] | None = Field(None, description="202: event_id, type, employee_id, duplicate; "
                                                              "400: a SCIM Error naming the attribute")


class HrBulkResponse(BaseModel):
    """202: every operation's event; 400: every operation's status (the bad ones with a SCIM
    Error, the others 412: not stored because another operation was refused)."""

    schemas: list[str] = [BULK_RESPONSE]
    Operations: list[HrBulkResult]
