"""The SCIM 2.0 endpoint's part of the service's OpenAPI document (paths under ``/scim/v2``).

The SCIM routes read their bodies themselves (the token is checked first, RFC 7644 §2) and
answer SCIM messages (RFC 7643, RFC 7644), so FastAPI cannot describe them; this module does,
and :func:`provisioner.api.openapi.build` adds it to ``/openapi.json``. Every error is a SCIM
Error (``application/scim+json``, RFC 7644 §3.12) with the status as a string.
"""

from __future__ import annotations

import copy
from typing import Any

from provisioner.scim.config import BULK_MAX_PAYLOAD_SIZE, MAX_RESULTS, SCIM_PREFIX
from provisioner.scim.responses import SCIM_MEDIA_TYPE

TAG = {"name": "scim", "description": "SCIM 2.0 service provider (RFC 7643, RFC 7644): Users, Groups, "
                                      "discovery, `.search` and `/Bulk`, with a SCIM bearer token."}
SECURITY = [{"scimToken": []}]  # the scheme is declared in provisioner.api.responses
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STRINGS = {"type": "array", "items": {"type": "string"}}
CORE = "urn:ietf:params:scim:schemas:core:2.0:"
MESSAGES = "urn:ietf:params:scim:api:messages:2.0:"


def _schemas(*uris: str) -> dict[str, Any]:
    """A request's ``schemas``: the resource's URIs (the first one required)."""
    return {"type": "array", "items": {"type": "string", "enum": list(uris)}, "minItems": 1,
            "uniqueItems": True, "contains": {"const": uris[0]}}


def _request(schema: dict[str, Any], uris: tuple[str, ...], required: list[str]) -> dict[str, Any]:
    """The request form of a resource schema: its ``schemas`` and required attributes."""
    out = copy.deepcopy(schema)
    out["properties"]["schemas"] = _schemas(*uris)
    out["required"] = ["schemas", *required]
    for name in ("id", "meta", "groups"):
        out["properties"].pop(name, None)
    return out


_MULTI = {"type": "array", "items": {"type": "object", "properties": {
    "value": {"type": ["string", "null"]}, "display": {"type": ["string", "null"]},
    "type": {"type": ["string", "null"]}, "primary": {"type": ["boolean", "null"]}}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "ScimError": {
        "type": "object", "required": ["schemas", "status"],
        "description": "RFC 7644 §3.12: the status is a string; scimType where Table 9 defines one.",
        "properties": {"schemas": _STRINGS, "status": {"type": "string"},
                       "scimType": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}}},
    "ScimMeta": {
        "type": "object",
        "properties": {"resourceType": {"type": "string"}, "created": {"type": "string"},
                       "lastModified": {"type": "string"}, "location": {"type": "string"},
                       "version": {"type": "string"}}},
    "ScimUser": {
        "type": "object", "required": ["schemas"],
        "description": "A User (RFC 7643 §4.1) with the enterprise extension; HR-owned attributes are "
                       "read-only when the person is managed by HR.",
        "properties": {
            "schemas": _STRINGS, "id": {"type": "string"}, "externalId": {"type": ["string", "null"]},
            "userName": {"type": "string"},
            "name": {"type": ["object", "null"], "properties": {
                "formatted": {"type": ["string", "null"]}, "givenName": {"type": ["string", "null"]},
                "familyName": {"type": ["string", "null"]}}},
            "displayName": {"type": ["string", "null"]}, "title": {"type": ["string", "null"]},
            "active": {"type": ["boolean", "null"]}, "emails": _MULTI,
            "groups": _MULTI, "meta": _ref("ScimMeta"),
            ENTERPRISE: {"type": ["object", "null"]}}},
    "ScimGroup": {
        "type": "object", "required": ["schemas"],
        "description": "A Group (RFC 7643 §4.2); members are Users.",
        "properties": {
            "schemas": _STRINGS, "id": {"type": "string"}, "externalId": {"type": ["string", "null"]},
            "displayName": {"type": "string"}, "members": _MULTI, "meta": _ref("ScimMeta")}},
    "ScimListResponse": {
        "type": "object", "required": ["schemas", "totalResults"],
        "properties": {"schemas": _STRINGS, "totalResults": {"type": "integer", "minimum": 0},
                       "startIndex": {"type": "integer"}, "itemsPerPage": {"type": "integer"},
                       "Resources": {"type": "array", "items": {"type": "object"}}}},
    "ScimPatchOp": {
        "type": "object", "required": ["schemas", "Operations"],
        "properties": {"schemas": _schemas(f"{MESSAGES}PatchOp"), "Operations": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["op"],
            "properties": {"op": {"type": "string", "enum": ["add", "remove", "replace", "Add", "Remove", "Replace"],
                                  "description": "add, remove or replace (any case)"},
                           "path": {"type": "string"}, "value": {}}}}}},
    "ScimSearchRequest": {
        "type": "object",
        "properties": {"schemas": _schemas(f"{MESSAGES}SearchRequest"), "filter": {"type": "string"},
                       "attributes": _STRINGS,
                       "excludedAttributes": _STRINGS, "sortBy": {"type": "string"},
                       "sortOrder": {"type": "string", "enum": ["ascending", "descending"]},
                       "startIndex": {"type": "integer"}, "count": {"type": "integer"}}},
    "ScimBulkRequest": {
        "type": "object", "required": ["schemas", "Operations"],
        "description": f"RFC 7644 §3.7: at most {BULK_MAX_PAYLOAD_SIZE} bytes (413 beyond).",
        "properties": {"schemas": _schemas(f"{MESSAGES}BulkRequest"), "failOnErrors": {"type": "integer"},
                       "Operations": {"type": "array", "items": {
                           "type": "object", "required": ["method", "path"],
                           "properties": {"method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE"]},
                                          "bulkId": {"type": "string"},
                                          "path": {"type": "string"}, "version": {"type": "string"},
                                          "data": {}}}}}},
    "ScimBulkResponse": {
        "type": "object", "required": ["schemas", "Operations"],
        "properties": {"schemas": _STRINGS, "Operations": {"type": "array", "items": {
            "type": "object", "properties": {"method": {"type": "string"}, "bulkId": {"type": "string"},
                                             "location": {"type": "string"}, "version": {"type": "string"},
                                             "status": {"type": "string"}, "response": {}}}}}},
    "ScimDiscovery": {"type": "object", "required": ["schemas"], "properties": {"schemas": _STRINGS}},
}
SCHEMAS["ScimUserRequest"] = _request(SCHEMAS["ScimUser"], (f"{CORE}User", ENTERPRISE), ["userName"])
SCHEMAS["ScimUserRequest"]["properties"]["userName"] = {"type": "string", "minLength": 1}
SCHEMAS["ScimGroupRequest"] = _request(SCHEMAS["ScimGroup"], (f"{CORE}Group",), ["displayName"])
SCHEMAS["ScimGroupRequest"]["properties"]["displayName"] = {"type": "string", "minLength": 1}

_ERRORS = {
    400: "Invalid request (scimType names the kind: invalidFilter, invalidSyntax, invalidValue, ...)",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token lacks the scope (writes need scim:write), or a filter on a discovery endpoint",
    404: "No such resource",
    409: "uniqueness: the userName or displayName is taken",
    412: "If-Match does not match the resource's ETag",
    413: "The body is larger than the limit (for /Bulk: maxPayloadSize or maxOperations)",
    415: "The body is not application/scim+json or application/json",
}


def _scim(schema: dict[str, Any]) -> dict[str, Any]:
    return {SCIM_MEDIA_TYPE: {"schema": schema}}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_RESOURCE_PARAMS = [
    _q("attributes", {"type": "string"}, "comma-separated attributes to return"),
    _q("excludedAttributes", {"type": "string"}, "comma-separated attributes not to return"),
]
_LIST_PARAMS = [
    _q("filter", {"type": "string"}, "RFC 7644 §3.4.2.2 filter"),
    _q("startIndex", {"type": "integer"}, "1-based index of the first result"),
    _q("count", {"type": "integer"}, f"page size (at most {MAX_RESULTS})"),
    _q("sortBy", {"type": "string"}, "attribute to sort by"),
    _q("sortOrder", {"type": "string", "enum": ["ascending", "descending"]}, "sort order"),
    *_RESOURCE_PARAMS,
]


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"},
            "description": description}


def _id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _op(summary: str, ok: dict[str | int, dict[str, Any]], errors: tuple[int, ...], *,
        params: list[dict[str, Any]] | None = None, body: str | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(code): resp for code, resp in ok.items()}
    for code in errors:
        responses[str(code)] = {"description": _ERRORS[code], "content": _scim(_ref("ScimError"))}
    op: dict[str, Any] = {"tags": ["scim"], "summary": summary, "security": SECURITY, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {
            SCIM_MEDIA_TYPE: {"schema": _ref(body)}, "application/json": {"schema": _ref(body)}}}
    return op


def _ok(description: str, schema: str | None, status: int = 200) -> dict[str | int, dict[str, Any]]:
    resp: dict[str, Any] = {"description": description}
    if schema:
        resp["content"] = _scim(_ref(schema))
    return {status: resp}


_READ = (400, 401, 403)
_WRITE = (400, 401, 403, 413, 415)


def _resource_paths(kind: str, schema: str) -> dict[str, dict[str, Any]]:
    """``/Users`` or ``/Groups``: list, create, .search, read, replace, modify, delete."""
    lower = kind.lower()
    param = f"{lower[:-1]}_id"
    if_match = _header("If-Match", "the ETag the change is conditional on (412 if it differs)")
    patch_ok = _ok(f"The modified {kind[:-1]}", schema)
    if kind == "Groups":
        patch_ok[204] = {"description": "Modified (no attributes asked for); the new ETag in the ETag header"}
    return {
        f"{SCIM_PREFIX}/{kind}": {
            "get": _op(f"Query {lower}", _ok("A page of results", "ScimListResponse"), _READ,
                       params=_LIST_PARAMS),
            "post": _op(f"Create a {kind[:-1]}", _ok("Created (Location and ETag headers)", schema, 201),
                        (*_WRITE, 409), params=_RESOURCE_PARAMS, body=f"{schema}Request"),
        },
        f"{SCIM_PREFIX}/{kind}/.search": {
            "post": _op(f"Query {lower} with a SearchRequest", _ok("A page of results", "ScimListResponse"),
                        (400, 401, 403, 413, 415), body="ScimSearchRequest"),
        },
        f"{SCIM_PREFIX}/{kind}/{{{param}}}": {
            "get": _op(f"Read a {kind[:-1]}", {**_ok(f"The {kind[:-1]}", schema),
                                               304: {"description": "Not modified (If-None-Match matched)"}},
                       (*_READ, 404), params=[_id(param), *_RESOURCE_PARAMS,
                                              _header("If-None-Match", "answer 304 if the ETag matches")]),
            "put": _op(f"Replace a {kind[:-1]}", _ok(f"The replaced {kind[:-1]}", schema),
                       (*_WRITE, 404, 409, 412), params=[_id(param), *_RESOURCE_PARAMS, if_match],
                       body=f"{schema}Request"),
            "patch": _op(f"Modify a {kind[:-1]}", patch_ok, (*_WRITE, 404, 409, 412),
                         params=[_id(param), *_RESOURCE_PARAMS, if_match], body="ScimPatchOp"),
            "delete": _op(f"Delete a {kind[:-1]}", {204: {"description": "Deleted"}}, (401, 403, 404, 412),
                          params=[_id(param), if_match]),
        },
    }


def _discovery(path: str, summary: str, schema: str, *, by_id: str | None = None) -> dict[str, dict[str, Any]]:
    """A discovery endpoint (RFC 7644 §4): any SCIM token; a ``filter`` is 403."""
    if by_id is None:
        return {f"{SCIM_PREFIX}/{path}": {"get": _op(summary, _ok(summary, schema), (401, 403))}}
    return {f"{SCIM_PREFIX}/{path}/{{{by_id}}}": {
        "get": _op(summary, _ok(summary, schema), (401, 403, 404), params=[_id(by_id)])}}


def document() -> tuple[dict[str, Any], dict[str, Any]]:
    """The SCIM paths (prefixed with ``/scim/v2``) and the component schemas they name."""
    paths: dict[str, Any] = {}
    paths.update(_resource_paths("Users", "ScimUser"))
    paths.update(_resource_paths("Groups", "ScimGroup"))
    paths[f"{SCIM_PREFIX}/.search"] = {"post": _op(
        "Query Users and Groups at once", _ok("A page of results", "ScimListResponse"),
        (400, 401, 403, 413, 415), body="ScimSearchRequest")}
    paths[f"{SCIM_PREFIX}/Bulk"] = {"post": _op(
        "Run several operations (RFC 7644 §3.7)", _ok("Each operation's outcome", "ScimBulkResponse"),
        (400, 401, 403, 413, 415), body="ScimBulkRequest")}
    paths.update(_discovery("ServiceProviderConfig", "What the service supports and its limits", "ScimDiscovery"))
    paths.update(_discovery("ResourceTypes", "The resource types", "ScimListResponse"))
    paths.update(_discovery("ResourceTypes", "One resource type", "ScimDiscovery", by_id="resource_type_id"))
    paths.update(_discovery("Schemas", "The schemas", "ScimListResponse"))
    paths.update(_discovery("Schemas", "One schema", "ScimDiscovery", by_id="schema_id"))
    return paths, copy.deepcopy(SCHEMAS)
