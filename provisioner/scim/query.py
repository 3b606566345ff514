"""Query parameters of list and search requests (RFC 7644 §3.4.2 and §3.4.3).

``attributes``, ``excludedAttributes``, ``sortBy``, ``sortOrder``, ``startIndex`` and ``count``
are validated by scim2-models' ``SearchRequest``; the ``filter`` is kept as text and compiled to
SQL by :mod:`provisioner.scim.filters` (scim2-filter-parser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidSyntaxException,
    InvalidValueException,
    Path,
    Resource,
    ResponseParameters,
    SearchRequest,
)

from provisioner.scim.config import DEFAULT_PAGE_SIZE, MAX_RESULTS, MAX_START_INDEX
from provisioner.scim.errors import scim_exception_from_validation
from provisioner.scim.filters import FilterSchema, sort_expression
from provisioner.scim.schemas import POLICY, specialised

_SEARCH_KEYS = ("attributes", "excludedAttributes", "sortBy", "sortOrder", "startIndex", "count")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list/search request.

    ``response`` is the scim2-models request itself, passed to ``model_dump`` so it applies
    ``attributes``/``excludedAttributes`` (RFC 7644 §3.9).
    """

    filter: str | None
    sort_by: str | None
    descending: bool
    start_index: int
    count: int
    response: ResponseParameters[Any]


def list_query_from_params(model: Any, params: Mapping[str, str]) -> ListQuery:
    """A GET query string (RFC 7644 §3.4.2); parameter names are case-insensitive."""
    lowered = {key.lower(): value for key, value in params.items()}
    payload = {key: lowered[key.lower()] for key in _SEARCH_KEYS if key.lower() in lowered}
    return _list_query(model, payload, lowered.get("filter"))


def list_query_from_body(model: Any, body: Any) -> ListQuery:
    """A ``POST .search`` body, a SearchRequest message (RFC 7644 §3.4.3)."""
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="A SearchRequest must be a JSON object")
    payload = {key: value for key, value in body.items() if key.lower() != "filter"}
    filters = [value for key, value in body.items() if key.lower() == "filter"]
    filter_text = filters[0] if filters else None
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidValueException(detail="filter must be a string")
    return _list_query(model, payload, filter_text)


def _list_query(model: Any, payload: dict[str, Any], filter_text: str | None) -> ListQuery:
    try:
        key = tuple(sorted(payload.items()))
        hash(key)
    except TypeError:  # a SearchRequest body with lists: not cached
        request = _search_request(model, payload)
    else:
        request = _cached_search_request(model, key)
    count = DEFAULT_PAGE_SIZE if request.count is None else max(0, request.count)
    sort_by = str(request.sort_by) if request.sort_by is not None else None
    return ListQuery(
        filter=filter_text if filter_text and filter_text.strip() else None,
        sort_by=sort_by,
        descending=request.sort_order == SearchRequest.SortOrder.descending,
        start_index=min(max(1, request.start_index or 1), MAX_START_INDEX),
        count=min(count, MAX_RESULTS),
        response=request,
    )


def _search_request(model: Any, payload: Mapping[str, Any]) -> Any:
    try:
        return specialised(SearchRequest, model).model_validate(
            dict(payload), scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY
        )
    except ValidationError as exc:
        raise scim_exception_from_validation(exc) from exc


@lru_cache(maxsize=512)
def _cached_search_request(model: Any, items: tuple[tuple[str, Any], ...]) -> Any:
    """The validated parameters of a query, by value: clients repeat the same few
    (``startIndex=1&count=100``, none at all) and scim2-models' validation costs about 0.3 ms.
    The result is only read (passed to ``model_dump``); errors are not cached."""
    return _search_request(model, dict(items))


def response_parameters(
    model: type[Resource[Any]], params: Mapping[str, str]
) -> ResponseParameters[Any]:
    """``attributes``/``excludedAttributes`` of a single-resource request (RFC 7644 §3.9)."""
    lowered = {key.lower(): value for key, value in params.items()}
    payload = tuple(
        (key, lowered[key.lower()])
        for key in ("attributes", "excludedAttributes")
        if key.lower() in lowered
    )
    return _cached_response_parameters(model, payload)


@lru_cache(maxsize=512)
def _cached_response_parameters(
    model: type[Resource[Any]], items: tuple[tuple[str, str], ...]
) -> ResponseParameters[Any]:
    try:
        return specialised(ResponseParameters, model).model_validate(dict(items))
    except ValidationError as exc:
        raise scim_exception_from_validation(exc) from exc


def is_plain(parameters: ResponseParameters[Any] | None) -> bool:
    """Whether a response carries every attribute (no ``attributes``/``excludedAttributes``)."""
    return parameters is None or not (parameters.attributes or parameters.excluded_attributes)


def wants(parameters: ResponseParameters[Any] | None, attribute: str) -> bool:
    """Whether a response must carry an attribute that costs a query (``groups``, ``members``).

    Only an explicit exclusion of the whole attribute, or an ``attributes`` list not naming it,
    lets the query be skipped.
    """
    if parameters is None:
        return True
    name = attribute.lower()
    if parameters.attributes:
        return any(_head(path) == name for path in parameters.attributes)
    if parameters.excluded_attributes:
        return not any(
            _head(path) == name and len(path.parts) == 1 for path in parameters.excluded_attributes
        )
    return True


def _head(path: Path[Any]) -> str:
    return path.parts[0].lower() if path.parts else ""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query (RFC 7644 §3.4.2.4)."""

    total: int
    start_index: int
    resources: list[Any]


def order_by(schema: FilterSchema, query: ListQuery) -> list[Any]:
    """ORDER BY of sortBy/sortOrder: missing values last ascending, first descending
    (RFC 7644 §3.4.2.3). Repositories add the primary key as the last key, so pages are
    stable without sortBy too (Okta pages with startIndex/count)."""
    if not query.sort_by:
        return []
    expr = sort_expression(schema, query.sort_by)
    return [expr.desc().nulls_first() if query.descending else expr.asc().nulls_last()]
