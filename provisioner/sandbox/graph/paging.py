"""Server-driven paging: ``@odata.nextLink`` URLs carrying an opaque ``$skiptoken``.

As in Graph (learn.microsoft.com/graph/paging), a collection answer holds at most one page and,
when more remain, an absolute ``@odata.nextLink`` on the host the caller used; the caller follows
it verbatim. The first request fixes the result set; a token names a position in it, so following
the same link twice (a retried request) returns the same page. Objects deleted meanwhile are left
out when their page is rendered. Tokens are kept for the most recent listings only; an evicted or
foreign token gets Graph's ``Directory_ExpiredPageToken``.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from provisioner.sandbox.graph.errors import EXPIRED_PAGE_TOKEN, bad_request
from provisioner.sandbox.graph.messages import GraphRequest

SKIP_TOKEN = "$skiptoken"
_SAFE = "$',()=@:/"  # left readable in links, as Graph leaves them


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a listing stands: its fixed items and the start of the next page."""

    scope: str  # the listing it belongs to; a token is only valid there
    items: Sequence[Any]
    position: int
    page_size: int
    link_path: str  # where next links point
    options: dict[str, str]  # query options next links repeat
    state: Any = None  # listing-specific context (delta: the round it closes)


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Any]
    next_link: str | None
    cursor: Cursor


def build_link(request: GraphRequest, path: str, options: dict[str, str]) -> str:
    """An absolute link on the caller's host: ``{base_url}{path}?{options}``."""
    encoded = "&".join(f"{name}={quote(value, safe=_SAFE)}" for name, value in options.items())
    return f"{request.base_url}{path}?{encoded}" if encoded else f"{request.base_url}{path}"


class Pages:
    """Cursors behind ``$skiptoken`` values, most recent ``capacity`` kept."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()

    def page(
        self,
        request: GraphRequest,
        *,
        scope: str,
        fetch: Callable[[], Sequence[Any]],
        page_size: int,
    ) -> Page:
        """A page of a plain collection: the one ``$skiptoken`` names, else the first one of
        ``fetch()``. Next links repeat the request's other query options, as Graph's do.
        """
        if SKIP_TOKEN in request.query:
            return self.resume(request, scope=scope)
        options = {name: value for name, value in request.query.items() if name != SKIP_TOKEN}
        return self.first(request, scope=scope, items=fetch(), page_size=page_size, options=options)

    def first(
        self,
        request: GraphRequest,
        *,
        scope: str,
        items: Sequence[Any],
        page_size: int,
        link_path: str | None = None,
        options: dict[str, str] | None = None,
        state: Any = None,
    ) -> Page:
        """The first page of ``items``; next links go to ``link_path`` (default: the request's
        path) with ``options`` and the token.
        """
        cursor = Cursor(scope, items, 0, page_size, link_path or request.path, options or {}, state)
        return self._render(request, cursor)

    def resume(self, request: GraphRequest, *, scope: str) -> Page:
        """The page the request's ``$skiptoken`` names."""
        cursor = self._cursors.get(request.query[SKIP_TOKEN])
        if cursor is None or cursor.scope != scope:
            raise bad_request(
                "The specified page token value has expired and can no longer be included in your request.",
                EXPIRED_PAGE_TOKEN,
            )
        self._cursors.move_to_end(request.query[SKIP_TOKEN])
        return self._render(request, cursor)

    def _render(self, request: GraphRequest, cursor: Cursor) -> Page:
        end = cursor.position + cursor.page_size
        items = cursor.items[cursor.position : end]
        if end >= len(cursor.items):
            return Page(items, None, cursor)
        token = self._save(replace(cursor, position=end))
        return Page(
            items, build_link(request, cursor.link_path, {**cursor.options, SKIP_TOKEN: token}), cursor
        )

    def _save(self, cursor: Cursor) -> str:
        token = secrets.token_urlsafe(16)
        self._cursors[token] = cursor
        if len(self._cursors) > self._capacity:
            self._cursors.popitem(last=False)
        return token
