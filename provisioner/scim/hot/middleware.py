"""The hot read path: a provisioning client's user lookups answered before any routing.

Okta and Entra ID look people up one at a time before every create or update
(``GET /Users?filter=userName eq "..."``, ``externalId eq``, ``GET /Users/{id}``), and
directories resolve prefixes with ``userName sw``. This middleware, installed on the
application the SCIM endpoint is mounted on, answers those requests itself: it parses the
request, runs one SQL statement on a held connection (:mod:`provisioner.scim.hot.statements`:
token, page, managers and groups) inside the event loop — an indexed read of a few rows costs
less than a hop to a worker thread — and renders with :mod:`provisioner.scim.hot.render` and orjson.

It only answers the plain successful case. Anything else is passed on untouched to the
ordinary stack, which answers it as before: another parameter (``attributes``, ``sortBy``,
``startIndex`` > 1...), conditional headers, a filter of another shape, a missing, unknown,
revoked or read-less token (401/403), no such user (404), a user with attributes stored
beyond the columns, a page that is full (``totalResults`` then needs a COUNT), the held
connection busy in another thread or failing. The ordinary path re-reads in that case, so the
answer is always the ordinary path's answer; ``tests/scim_endpoint/test_hot_path.py`` checks
that the hot answers are byte for byte those of the ordinary path.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.scim.auth import bearer_token_or_none, token_digest
from provisioner.scim.config import DEFAULT_PAGE_SIZE, SCIM_PREFIX
from provisioner.scim.hot import render
from provisioner.scim.hot.statements import UNIQUE, HotReader, Lookup, Result, reader_of
from provisioner.scim.protocol import resource_response
from provisioner.scim.responses import ScimJSONResponse
from provisioner.scim.schemas import etag
from provisioner.scim.textops import unstorable

log = logging.getLogger(__name__)

HOT_MAX_PAGE: Final = 200
"""The largest ``count`` the hot path answers; larger pages take the ordinary path."""

_FILTER: Final = re.compile(
    r' *(userName|externalId|id) +(eq|sw) +("(?:[^"\\]|\\.)*") *', re.IGNORECASE | re.ASCII
)
"""The filters answered here. Only spaces separate the tokens, and names and operators match
ASCII letters only (``re.ASCII``: without it ``ſ`` would match ``s``): scim2-filter-parser's
lexer refuses other whitespace, and the ordinary path must answer whatever it would refuse."""
_DIGITS: Final = re.compile(r"[0-9]{1,9}")
_LIST_KEYS: Final = frozenset({"filter", "count", "startindex"})
_READ_SCOPES: Final = frozenset({"scim:read", "scim:write"})


class ScimHotReads:
    """Answer plain user lookups under ``prefix``; pass every other request on."""

    def __init__(self, app: ASGIApp, prefix: str = SCIM_PREFIX) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self._users = f"{self.prefix}/Users"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the lookup if it is one; otherwise the next application does."""
        response = None
        if scope["type"] == "http" and scope["method"] == "GET":
            path = route_path(scope)
            if path.startswith(self._users):
                try:
                    response = await self._answer(scope, path[len(self._users) :])
                except Exception:  # the ordinary path answers, with a SCIM error if it must
                    log.exception("scim hot path: unexpected error on GET %s", path)
                    response = None
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, rest: str) -> Any:
        """The response to ``GET .../Users{rest}``, or None to pass the request on."""
        headers = _headers(scope)
        if headers is None:
            return None
        authorization, host = headers
        state = getattr(scope.get("app"), "state", None)
        db = getattr(state, "db", None)
        if db is None:
            return None
        digest = _token_digest(authorization)
        if digest is None:
            return None
        reader = reader_of(db)
        base = _base_url(scope.get("scheme", "http"), host, scope.get("server"), scope)
        base += self.prefix
        if rest == "":
            return await _list(reader, digest, scope.get("query_string", b""), base)
        if (user_id := user_id_of(rest)) is not None:
            if scope.get("query_string"):
                return None
            return _get(reader, digest, user_id, base)
        return None


async def _list(reader: HotReader, digest: str, query_string: bytes, base: str) -> Any:
    """``GET /Users?filter=...``: the ListResponse, or None. A unique lookup runs in the
    event loop; a ``sw`` range, which may be broad, in a worker thread."""
    params = _list_params(query_string)
    if params is None:
        return None
    text, count = params
    lookup_values = _lookup(reader, text)
    if lookup_values is None:
        return None
    lookup, values = lookup_values
    if lookup in UNIQUE:
        result = reader.read(digest, lookup, values, count)
    else:
        result = await run_in_threadpool(reader.read, digest, lookup, values, count)
    if not _authorized(result):
        return None
    assert result is not None
    if len(result.users) >= count:
        return None  # totalResults needs a COUNT: the ordinary path runs it
    resources = _bodies(result, base)
    if resources is None:
        return None
    return ScimJSONResponse(render.list_body(len(resources), 1, resources))


def _get(reader: HotReader, digest: str, user_id: str, base: str) -> Any:
    """``GET /Users/{id}``: the resource with its ETag, or None."""
    result = reader.read(digest, Lookup.id, (user_id,), 1)
    if not _authorized(result):
        return None
    assert result is not None
    bodies = _bodies(result, base)
    if not bodies:
        return None  # 404 (or a user the models render): the ordinary path answers
    found = result.users[0].identity
    body = bodies[0]
    return resource_response(body, version=etag(found.version), location=body["meta"]["location"])


def _authorized(result: Result | None) -> bool:
    return result is not None and result.scopes is not None and bool(result.scopes & _READ_SCOPES)


def _bodies(result: Result, base: str) -> list[dict[str, Any]] | None:
    bodies = []
    for found in result.users:
        body = render.user_dict(
            found.identity, base_url=base, groups=found.groups, manager=found.manager
        )
        if body is None:
            return None
        bodies.append(body)
    return bodies


def _list_params(query_string: bytes) -> tuple[str, int] | None:
    """The filter and count of a list request with only ``filter``, ``count`` and
    ``startIndex=1``; None for anything else."""
    if not query_string:
        return None
    params: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        name = key.lower()
        if name not in _LIST_KEYS or name in params:
            return None
        params[name] = value
    text = params.get("filter")
    if text is None:
        return None
    count = DEFAULT_PAGE_SIZE
    if "count" in params:
        if not _DIGITS.fullmatch(params["count"]):
            return None
        count = int(params["count"])
    if not 1 <= count <= HOT_MAX_PAGE:
        return None
    start = params.get("startindex")
    if start is not None and not (_DIGITS.fullmatch(start) and int(start) == 1):
        return None
    return text, count


def _lookup(reader: HotReader, text: str) -> tuple[Lookup, tuple[str, ...]] | None:
    """The lookup of ``userName eq|sw``, ``externalId eq`` or ``id eq`` with a string."""
    match = _FILTER.fullmatch(text)
    if match is None:
        return None
    attribute, operator, literal = match.groups()
    try:
        value = json.loads(literal)
    except ValueError:
        return None
    if not isinstance(value, str) or unstorable(value) is not None:
        return None  # the ordinary path refuses it (400 invalidFilter)
    attribute, operator = attribute.lower(), operator.lower()
    if operator == "eq":
        lookup = {
            "username": Lookup.user_name_eq,
            "externalid": Lookup.external_id_eq,
            "id": Lookup.id,
        }[attribute]
        return lookup, (value,)
    if attribute != "username" or not value:
        return None
    return reader.starts_with(value)


def _token_digest(authorization: str | None) -> str | None:
    """SHA-256 of an ``Authorization: Bearer`` token, as tokens are stored."""
    token = bearer_token_or_none(authorization)
    return None if token is None else token_digest(token)


def _headers(scope: Scope) -> tuple[str | None, str | None] | None:
    """``Authorization`` and ``Host``; None when the request is conditional."""
    authorization = host = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif key == b"host":
            if host is None:
                host = value.decode("latin-1")
        elif key in (b"if-none-match", b"if-match"):
            return None
    return authorization, host


def route_path(scope: Scope) -> str:
    """The request path below the application's root path (ASGI ``root_path``)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def user_id_of(rest: str) -> str | None:
    """The id of ``/Users{rest}`` when it names one user (``rest`` is ``/{id}``, one segment
    not starting with a dot, so not ``/.search``); None for any other path."""
    if rest[:1] == "/" and (user_id := rest[1:]) and "/" not in user_id and user_id[0] != ".":
        return user_id
    return None


def _base_url(scheme: str, host: str | None, server: Any, scope: Scope) -> str:
    """The application's root URL as the SCIM routes see it (``scheme://netloc/root``)."""
    root = scope.get("root_path", "")
    return _netloc_url(scheme, host, tuple(server) if server else None) + root


@lru_cache(maxsize=256)
def _netloc_url(scheme: str, host: str | None, server: tuple[str, int] | None) -> str:
    headers = [(b"host", host.encode("latin-1"))] if host is not None else []
    url = URL(scope={"type": "http", "scheme": scheme, "server": server, "path": "/",
                     "query_string": b"", "headers": headers})
    return f"{url.scheme}://{url.netloc}"
