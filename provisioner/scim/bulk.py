"""``POST /Bulk`` (RFC 7644 §3.7).

* ``maxOperations`` and ``maxPayloadSize`` (announced in ``/ServiceProviderConfig``) are
  enforced: a larger request is ``413`` (§3.7.4).
* Operations run in request order, except that a POST runs before the first operation that
  references its ``bulkId`` (§3.7.2); a reference that cannot be resolved (circular, or to a
  failed POST) fails that operation with ``409`` (§3.7.1).
* Each operation runs in its own savepoint, through the same use cases as the single
  requests: a failed operation leaves no trace and the others go on, until ``failOnErrors``
  failures (§3.7.3). The request commits as a whole at the boundary.
* ``version`` of an operation is its ``If-Match`` (§3.7, §3.14).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from scim2_models import (
    BulkResponse,
    ConflictException,
    Context,
    EnterpriseUser,
    InvalidSyntaxException,
    InvalidValueException,
    NotFoundException,
    PayloadTooLargeException,
    SCIMException,
    User,
)

from provisioner.scim.config import BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE
from provisioner.scim.context import ScimContext
from provisioner.scim.errors import MethodNotAllowedException
from provisioner.scim.protocol import Conditions
from provisioner.scim.schemas import GroupResource, etag, location
from provisioner.scim.service_groups import GroupService
from provisioner.scim.service_users import UserService

BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
_BULK_ID = "bulkId:"
_PATH = re.compile(r"^/?(Users|Groups)(?:/([^/]+))?/?$", re.IGNORECASE)
_SUCCESS_STATUS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}

BulkResponseModel = BulkResponse[Union[User[EnterpriseUser], GroupResource]]


def check_payload_size(size: int) -> None:
    """413 for a body larger than ``maxPayloadSize`` (RFC 7644 §3.7.4)."""
    if size > BULK_MAX_PAYLOAD_SIZE:
        raise PayloadTooLargeException(
            detail=f"The size of the bulk operation exceeds the maxPayloadSize "
            f"({BULK_MAX_PAYLOAD_SIZE})."
        )


@dataclass(slots=True)
class _Operation:
    index: int
    method: str
    path: str
    bulk_id: str | None
    data: Any
    version: str | None
    invalid: SCIMException | None = None
    references: list[str] = field(default_factory=list)


def run_bulk(ctx: ScimContext, payload: Any) -> dict[str, Any]:
    """Run a BulkRequest and return the BulkResponse body."""
    operations, fail_on_errors = _read_request(payload)
    creations: dict[str, int] = {}
    for op in operations:
        if op.method == "POST" and op.bulk_id and op.bulk_id not in creations:
            creations[op.bulk_id] = op.index

    created: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    for op in _ordered(operations, creations):
        if fail_on_errors is not None and errors >= fail_on_errors:
            break
        outcome: dict[str, Any] = {
            "method": op.method if op.method in _SUCCESS_STATUS else None,
            "bulkId": op.bulk_id,
        }
        try:
            if op.invalid is not None:
                raise op.invalid
            if op.method == "POST" and op.bulk_id and creations.get(op.bulk_id) != op.index:
                raise InvalidValueException(detail=f"bulkId {op.bulk_id} is not unique")
            path = _resolve(op.path, creations, created, results)
            data = _resolve(op.data, creations, created, results)
            with ctx.session.begin_nested():
                status, where, version, new_id = _execute(ctx, op.method, path, data, op.version)
            outcome.update(status=status, location=where, version=version)
            if op.method == "POST" and op.bulk_id and new_id:
                created[op.bulk_id] = new_id
        except SCIMException as exc:
            errors += 1
            error = exc.to_error()
            outcome.update(status=int(error.status or exc.status), response=error)
            match = _PATH.match(op.path or "")
            if op.method != "POST" and match and match.group(2):
                outcome["location"] = location(ctx.base_url, _endpoint(match), match.group(2))
        results[op.index] = {k: v for k, v in outcome.items() if v is not None}

    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]}
    body["Operations"] = [results[index] for index in sorted(results)]
    return BulkResponseModel.model_validate(body).model_dump(scim_ctx=Context.BULK_RESPONSE)


def _read_request(payload: Any) -> tuple[list[_Operation], int | None]:
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="A BulkRequest must be a JSON object")
    keys = {key.lower(): key for key in payload}
    schemas = payload.get(keys.get("schemas", "schemas")) or []
    if BULK_REQUEST_SCHEMA not in schemas:
        raise InvalidSyntaxException(detail=f"schemas must contain {BULK_REQUEST_SCHEMA}")
    raw_ops = payload.get(keys.get("operations", "Operations"))
    if not isinstance(raw_ops, list):
        raise InvalidSyntaxException(detail="Operations must be a list")
    if len(raw_ops) > BULK_MAX_OPERATIONS:
        raise PayloadTooLargeException(
            detail=f"The number of operations exceeds the maxOperations ({BULK_MAX_OPERATIONS})."
        )
    fail_on_errors = payload.get(keys.get("failonerrors", "failOnErrors"))
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int)
        or isinstance(fail_on_errors, bool)
        or fail_on_errors < 1
    ):
        raise InvalidValueException(detail="failOnErrors must be a positive integer")
    return [_read_operation(index, raw) for index, raw in enumerate(raw_ops)], fail_on_errors


def _read_operation(index: int, raw: Any) -> _Operation:
    if not isinstance(raw, dict):
        return _Operation(
            index,
            "",
            "",
            None,
            None,
            None,
            InvalidSyntaxException(detail="An operation must be a JSON object"),
        )
    get = {key.lower(): value for key, value in raw.items()}
    method = str(get.get("method") or "").upper()
    op = _Operation(
        index=index,
        method=method,
        path=str(get.get("path") or ""),
        bulk_id=str(get["bulkid"]) if get.get("bulkid") is not None else None,
        data=get.get("data"),
        version=get.get("version"),
    )
    if method not in _SUCCESS_STATUS:
        op.invalid = InvalidValueException(detail=f"Unsupported bulk method {method!r}")
    elif method == "POST" and not op.bulk_id:
        op.invalid = InvalidValueException(detail="bulkId is required for POST")
    elif method != "DELETE" and not isinstance(op.data, dict):
        op.invalid = InvalidSyntaxException(detail=f"data is required for {method}")
    op.references = _references(op.path) + _references(op.data)
    return op


def _ordered(operations: list[_Operation], creations: dict[str, int]) -> list[_Operation]:
    """Request order, a POST moved before the first operation referencing its bulkId.

    Depth-first without recursion; a cycle leaves the referencing operation first, and it then
    fails with 409 (RFC 7644 §3.7.1).
    """
    order: list[_Operation] = []
    visited: set[int] = set()
    for root in operations:
        if root.index in visited:
            continue
        on_path = {root.index}
        stack = [(root, iter(_dependencies(root, creations)))]
        while stack:
            op, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                on_path.discard(op.index)
                visited.add(op.index)
                order.append(op)
            elif dep not in visited and dep not in on_path:
                on_path.add(dep)
                stack.append((operations[dep], iter(_dependencies(operations[dep], creations))))
    return order


def _dependencies(op: _Operation, creations: dict[str, int]) -> list[int]:
    return [
        creations[ref] for ref in op.references if ref in creations and creations[ref] != op.index
    ]


def _references(value: Any) -> list[str]:
    found: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, str):
            for segment in item.split("/"):
                if segment.startswith(_BULK_ID):
                    found.append(segment[len(_BULK_ID) :])
        elif isinstance(item, list):
            for entry in item:
                visit(entry)
        elif isinstance(item, dict):
            for entry in item.values():
                visit(entry)

    visit(value)
    return found


def _resolve(
    value: Any,
    creations: dict[str, int],
    created: dict[str, str],
    results: dict[int, dict[str, Any]],
) -> Any:
    """Replace ``bulkId:X`` references with the ids of the resources created."""

    def replace(bulk_id: str) -> str:
        if bulk_id in created:
            return created[bulk_id]
        index = creations.get(bulk_id)
        if index is not None and index not in results:
            raise ConflictException(detail=f"bulkId {bulk_id} is part of a circular reference")
        raise ConflictException(detail=f"No resource was created with bulkId {bulk_id}")

    def visit(item: Any) -> Any:
        if isinstance(item, str):
            if _BULK_ID not in item:
                return item
            return "/".join(
                replace(s[len(_BULK_ID) :]) if s.startswith(_BULK_ID) else s
                for s in item.split("/")
            )
        if isinstance(item, list):
            return [visit(entry) for entry in item]
        if isinstance(item, dict):
            return {key: visit(entry) for key, entry in item.items()}
        return item

    return visit(value)


def _endpoint(match: re.Match[str]) -> str:
    return "Users" if match.group(1).lower() == "users" else "Groups"


def _execute(
    ctx: ScimContext, method: str, path: str, data: Any, version: str | None
) -> tuple[int, str | None, str | None, str | None]:
    """Run one operation; returns (status, location, version, created id)."""
    match = _PATH.match(path)
    if match is None:
        raise NotFoundException(detail=f"No resource endpoint at {path!r}")
    endpoint, resource_id = _endpoint(match), match.group(2)
    if (method == "POST") == (resource_id is not None):
        raise MethodNotAllowedException(detail=f"{method} is not allowed on {path!r}")
    conditions = Conditions(if_match=version)
    service: Callable[[ScimContext], Any] = UserService if endpoint == "Users" else GroupService
    svc = service(ctx)
    status = _SUCCESS_STATUS[method]
    if method == "POST":
        resource = svc.create(data)
        return status, resource.meta.location, resource.meta.version, resource.id
    assert resource_id is not None
    where = location(ctx.base_url, endpoint, resource_id)
    if method == "DELETE":
        svc.delete(resource_id, conditions)
        return status, where, None, None
    if method == "PUT":
        resource = svc.replace(resource_id, data, conditions)
        return status, where, resource.meta.version, None
    result = svc.patch(resource_id, data, conditions)
    new_version = result.meta.version if endpoint == "Users" else etag(result.version)
    return status, where, new_version, None
