"""Finding users and groups in apps whose filters cannot be trusted: list with paging
(RFC 7644 §3.4.2.4, ``startIndex``/``count``) and match locally.

Two cases lead here:

- the ServiceProviderConfig says ``filter.supported: false`` (RFC 7643 §5): every lookup lists;
- a filter answers nothing for a resource that exists (django-scim2's shipped filter settings map
  no Group attribute, so ``displayName eq`` finds nothing; it drops unknown attributes from user
  filters too). An empty answer is confirmed by one listing, at most once per
  ``CONFIRM_PERIOD`` for that resource and attribute; when the listing holds what the filter
  missed, that attribute's filter is remembered as unreliable for this target and is no longer
  asked.

Listings are cached for ``LISTING_TTL`` seconds and dropped when the connector creates or
deletes a resource of that type or hears 409 (``invalidate``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

LISTING_TTL = 30.0  # seconds a listing answers lookups
CONFIRM_PERIOD = 300.0  # seconds between listings that confirm an empty filter answer
MAX_PAGE = 200  # resources asked per page (never more than the server's filter.maxResults)
MAX_PAGES = 10_000  # a server that ignores startIndex is not followed for ever

Reader = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass
class _Cached:
    rows: list[dict[str, Any]]
    at: float


@dataclass
class Listings:
    """Per-target cache of full listings and what was learned about its filters."""

    ttl: float = LISTING_TTL
    unreliable: set[tuple[str, str]] = field(default_factory=set)  # (resource, attribute)
    _cache: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    _confirmed: dict[tuple[str, str], float] = field(default_factory=dict)

    async def rows(self, read: Reader, resource: str, attributes: str, page: int, *,
                   fresh: bool = False) -> list[dict[str, Any]]:
        """Every ``resource`` (``Users``/``Groups``), following pages; from the cache unless
        ``fresh`` or older than the TTL."""
        key = (resource, attributes)
        cached = self._cache.get(key)
        if not fresh and cached is not None and time.monotonic() - cached.at < self.ttl:
            return cached.rows
        rows = await list_all(read, resource, attributes, page)
        self._cache[key] = _Cached(rows, time.monotonic())
        return rows

    def invalidate(self, resource: str | None = None) -> None:
        """Forget the listings of ``resource`` (all of them when None)."""
        for key in [k for k in self._cache if resource is None or k[0] == resource]:
            del self._cache[key]

    def trusted(self, resource: str, attribute: str) -> bool:
        return (resource, attribute) not in self.unreliable

    def should_confirm(self, resource: str, attribute: str) -> bool:
        """Whether an empty filter answer on this attribute is to be checked by a listing now
        (at most once per ``CONFIRM_PERIOD``)."""
        last = self._confirmed.get((resource, attribute))
        return last is None or time.monotonic() - last >= CONFIRM_PERIOD

    def confirmed(self, resource: str, attribute: str, *, filter_missed: bool) -> None:
        self._confirmed[(resource, attribute)] = time.monotonic()
        if filter_missed:
            self.unreliable.add((resource, attribute))

    def describe(self) -> list[str]:
        return sorted(f"{r}.{a}" for r, a in self.unreliable)


async def list_all(read: Reader, resource: str, attributes: str, page: int) -> list[dict[str, Any]]:
    """All resources of a type, page by page (1-based ``startIndex``), each id once; stops at
    ``totalResults``, at an empty page, or when a page brings nothing new (a server ignoring
    ``startIndex``)."""
    found: dict[str, dict[str, Any]] = {}
    start = 1
    for _ in range(MAX_PAGES):
        body = await read(resource, {"attributes": attributes, "startIndex": start, "count": page})
        items = [r for r in (body.get("Resources") or []) if isinstance(r, dict) and r.get("id")]
        new = [r for r in items if str(r["id"]) not in found]
        for row in new:
            found[str(row["id"])] = row
        total = body.get("totalResults")
        start += len(items)
        if not new or (isinstance(total, int) and start > total):
            break
    return list(found.values())


def page_size(max_results: int) -> int:
    return max(1, min(max_results, MAX_PAGE))
