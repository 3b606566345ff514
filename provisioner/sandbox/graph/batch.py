"""JSON batching: ``POST /$batch`` (learn.microsoft.com/graph/json-batching).

The body is ``{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}`` with at
most 20 requests; ``url`` is relative to the version root (``/users/{id}`` or ``users/{id}``). A
request with a body must say its ``Content-Type`` in ``headers``. The answer is 200 with
``{"responses": [{"id", "status", "headers", "body"?}]}``; each item is executed through the same
pipeline as a direct request, so it is throttled on its own and can come back 429 with
``Retry-After`` inside the 200. Items run in the order given; an item whose ``dependsOn`` names an
item that failed (status not 2xx) isn't run and answers 424 Failed Dependency. Properties Graph
doesn't define are ignored (msgraph-core sends ``depends_on``, which Graph ignores too).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from provisioner.sandbox.graph.errors import (
    ODATA_BAD_REQUEST,
    GraphError,
    error_response,
)
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse, JsonObject
from provisioner.sandbox.graph.stats import SandboxStats

MAX_BATCH_REQUESTS = 20
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


def _invalid(message: str) -> GraphError:
    return GraphError(400, ODATA_BAD_REQUEST, message)


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    depends_on: tuple[str, ...]
    request: GraphRequest


class BatchProcessor:
    """Runs the items of a ``$batch`` through ``execute``, the sandbox's request pipeline."""

    def __init__(self, execute: Callable[[GraphRequest], GraphResponse], stats: SandboxStats) -> None:
        self._execute = execute
        self._stats = stats

    def run(self, batch: GraphRequest) -> GraphResponse:
        items = _parse_items(batch)
        statuses: dict[str, int] = {}
        responses: list[JsonObject] = []
        for item in items:
            failed = [dep for dep in item.depends_on if not 200 <= statuses[dep] < 300]
            if failed:
                response = error_response(
                    GraphError(
                        424, "FailedDependency", f"Request depends on failed request(s): {', '.join(failed)}."
                    )
                )
            else:
                self._stats.sub_requests += 1
                response = self._execute(item.request)
            statuses[item.id] = response.status
            entry: JsonObject = {"id": item.id, "status": response.status}
            if response.body is None:
                entry["headers"] = response.headers
            else:
                entry["headers"] = {"Content-Type": "application/json", **response.headers}
                entry["body"] = response.body
            responses.append(entry)
        return GraphResponse(200, {"responses": responses})


def _parse_items(batch: GraphRequest) -> list[_Item]:
    """The batch's items, after the checks Graph makes before running any of them."""
    body = batch.body
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid("Invalid batch payload format: a 'requests' array is required.")
    raw_items: list[Any] = body["requests"]
    if not raw_items:
        raise _invalid("Invalid batch payload format: 'requests' is empty.")
    if len(raw_items) > MAX_BATCH_REQUESTS:
        raise _invalid(f"Invalid batch payload format: at most {MAX_BATCH_REQUESTS} requests are allowed.")
    items: list[_Item] = []
    seen: set[str] = set()
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise _invalid("Invalid batch payload format: each request must be an object.")
        item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
        if not isinstance(item_id, str) or not item_id:
            raise _invalid("Invalid batch payload format: each request needs an 'id'.")
        if item_id in seen:
            raise _invalid(f"Invalid batch payload format: duplicate request id '{item_id}'.")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _invalid(f"Invalid batch payload format: request '{item_id}' has an invalid method.")
        if not isinstance(url, str) or not url or urlsplit(url).scheme:
            raise _invalid(f"Invalid batch payload format: request '{item_id}' needs a relative url.")
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict):
            raise _invalid(f"Invalid batch payload format: headers of request '{item_id}' must be an object.")
        headers = {str(name).lower(): str(value) for name, value in headers.items()}
        if raw.get("body") is not None and "content-type" not in headers:
            raise _invalid(
                f"Content-Type header must be specified for request '{item_id}', which has a body."
            )
        depends_on = raw.get("dependsOn") or []
        if not isinstance(depends_on, list) or any(dep not in seen for dep in depends_on):
            raise _invalid(
                f"Invalid batch payload format: dependsOn of request '{item_id}' must name earlier requests."
            )
        if "client-request-id" in batch.headers:
            headers.setdefault("client-request-id", batch.headers["client-request-id"])
        parts = urlsplit(url)
        path = unquote(parts.path)
        request = GraphRequest(
            method=method.upper(),
            path=path if path.startswith("/") else f"/{path}",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=_item_body(raw.get("body")),
            headers=headers,
            base_url=batch.base_url,
        )
        items.append(_Item(item_id, tuple(depends_on), request))
        seen.add(item_id)
    return items


def _item_body(body: Any) -> Any:
    """An item's body: a JSON object as is, or base64-encoded JSON (how msgraph-core sends
    bodies that aren't objects).
    """
    if not isinstance(body, str):
        return body
    try:
        return json.loads(base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid("Unable to read the base64-encoded body of a batch request.") from None
