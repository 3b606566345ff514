"""HTTP-level SCIM helpers: JSON bodies, the base URL, ETags and conditional requests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from scim2_models import (
    Context,
    InvalidSyntaxException,
    InvalidValueException,
    ListResponse,
    PreconditionFailedException,
)
from starlette.responses import Response

from provisioner.scim.config import MAX_BODY_DEPTH
from provisioner.scim.errors import UnsupportedMediaTypeException
from provisioner.scim.query import response_parameters
from provisioner.scim.responses import ScimJSONResponse
from provisioner.scim.schemas import specialised
from provisioner.scim.textops import unstorable


def base_url(request: Request) -> str:
    """The URL of the SCIM root as the client sees it (``.../scim/v2``), for ``meta.location``."""
    url = request.base_url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def is_json_media_type(content_type: str | None) -> bool:
    """``application/scim+json``, ``application/json`` or any ``application/*+json``."""
    if not content_type:
        return True  # RFC 7644 §3.8: JSON is the default format
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parse_json(body: bytes, content_type: str | None) -> Any:
    """Decode a request body; a non-JSON type is 415, malformed JSON is 400 invalidSyntax."""
    if not is_json_media_type(content_type):
        raise UnsupportedMediaTypeException
    if not body.strip():
        raise InvalidSyntaxException(detail="The request body is empty")
    too_deep = f"The request body nests objects and arrays more than {MAX_BODY_DEPTH} deep"
    try:
        value = json.loads(body)
    except RecursionError as exc:  # the decoder recurses per level
        raise InvalidSyntaxException(detail=too_deep) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntaxException(detail=f"The request body is not valid JSON: {exc}") from exc
    if body.count(b"{") + body.count(b"[") > MAX_BODY_DEPTH and _depth(value) > MAX_BODY_DEPTH:
        raise InvalidSyntaxException(detail=too_deep)
    # NUL and unpaired surrogates only come from ``\u`` escapes (RFC 8259 §7): a body without
    # a backslash needs no walk.
    if b"\\" in body and (found := _unstorable_in(value)) is not None:
        where, why = found
        raise InvalidValueException(detail=f"{where.lstrip('.') or 'The body'} contains {why}")
    return value


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in a JSON value (without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _unstorable_in(value: Any) -> tuple[str, str] | None:
    """Where (``.a[0].b``) and why a string of a JSON value cannot be stored
    (:func:`~provisioner.scim.textops.unstorable`); None when every string can."""
    if isinstance(value, str):
        why = unstorable(value)
        return None if why is None else ("", why)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        step = f".{key}" if isinstance(key, str) else f"[{key}]"
        if isinstance(key, str) and (why := unstorable(key)) is not None:
            return f"{step} (a key)", why
        if (found := _unstorable_in(item)) is not None:
            return step + found[0], found[1]
    return None


_ENTITY_TAG = re.compile(r'\s*(?:[Ww]/)?(?:"([^"]*)"|([^,]*?))\s*(?:,|$)')


def _tags(header: str | None) -> set[str] | None:
    """The opaque tags of an If-Match / If-None-Match header; ``{"*"}`` for any."""
    if header is None or not header.strip():
        return None
    tags: set[str] = set()
    for match in _ENTITY_TAG.finditer(header):
        quoted, bare = match.groups()
        if quoted is None and bare == "*":
            return {"*"}
        if quoted is not None or bare:
            tags.add(quoted if quoted is not None else bare)
    return tags


def _opaque(version: str) -> str:
    tag = version.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:]
    return tag.strip('"')


@dataclass(frozen=True, slots=True)
class Conditions:
    """The conditional headers of a request (RFC 7644 §3.14, RFC 9110 §13)."""

    if_match: str | None = None
    if_none_match: str | None = None

    @classmethod
    def of(cls, request: Request) -> Conditions:
        """The conditional headers of a request."""
        return cls(request.headers.get("if-match"), request.headers.get("if-none-match"))

    def check(self, version: str, method: str) -> bool:
        """Evaluate against a resource's ``meta.version``; weak comparison (SCIM uses W/ tags).

        :returns: False when a GET should answer 304 Not Modified.
        :raises PreconditionFailedException: 412 when the operation must not run.
        """
        current = _opaque(version)
        if_match = _tags(self.if_match)
        if if_match is not None and "*" not in if_match and current not in if_match:
            raise PreconditionFailedException(
                detail=f"The resource version is {version}, not the one in If-Match"
            )
        if_none_match = _tags(self.if_none_match)
        if if_none_match is not None and ("*" in if_none_match or current in if_none_match):
            if method == "GET":
                return False
            raise PreconditionFailedException(detail="The resource matches If-None-Match")
        return True


def resource_response(
    body: dict[str, Any],
    *,
    version: str | None,
    location: str | None,
    status_code: int = 200,
    created: bool = False,
) -> Response:
    """A single-resource response with its ETag and Content-Location (RFC 7644 §3.14, §3.1)."""
    headers: dict[str, str] = {}
    if version:
        headers["ETag"] = version
    if location:
        headers["Content-Location"] = location
        if created:
            headers["Location"] = location
    return ScimJSONResponse(body, status_code=status_code, headers=headers)


def not_modified(version: str) -> Response:
    """304 to a GET whose If-None-Match matches (RFC 9110 §15.4.5 keeps the ETag)."""
    return Response(status_code=304, headers={"ETag": version})


def list_response(model: Any, page: Any, parameters: Any) -> Response:
    """A ``ListResponse`` (RFC 7644 §3.4.2): numbers as JSON numbers and, with no match, an
    empty ``Resources`` list (what Entra ID expects from a lookup that finds nothing)."""
    listing = specialised(ListResponse, model)(
        total_results=page.total,
        start_index=page.start_index,
        items_per_page=len(page.resources),
        resources=list(page.resources),
    )
    body = listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    body.setdefault("Resources", [])
    return ScimJSONResponse(body)


def resource_body(resource: Any, parameters: Any, scim_ctx: Context) -> dict[str, Any]:
    """A resource as sent to the client, with ``attributes``/``excludedAttributes`` applied."""
    return resource.model_dump(scim_ctx=scim_ctx, response_parameters=parameters)


def model_response(
    model: Any,
    resource: Any,
    params: dict[str, str],
    scim_ctx: Context,
    *,
    status_code: int = 200,
    parameters: Any = None,
) -> Response:
    """A User or Group rendered by the models (``attributes``/``excludedAttributes`` of
    ``params`` unless ``parameters`` is given), with its ETag and Content-Location; 201 adds
    Location."""
    parameters = parameters or response_parameters(model, params)
    assert resource.meta is not None
    return resource_response(
        resource_body(resource, parameters, scim_ctx),
        version=resource.meta.version,
        location=resource.meta.location,
        status_code=status_code,
        created=status_code == 201,
    )
