"""``GET /users`` and ``GET /groups``: one listing for both entity sets ($filter, $select,
$top, paging with ``@odata.nextLink``)."""

from __future__ import annotations

from functools import partial

from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse, JsonObject
from provisioner.sandbox.graph.odata import (
    check_options,
    check_or_clauses,
    collection_response,
    matching_ids,
    parse_filter,
    parse_select,
    parse_top,
    project,
    select_fragment,
)
from provisioner.sandbox.graph.paging import SKIP_TOKEN, Pages
from provisioner.sandbox.graph.schema import EntityType
from provisioner.sandbox.graph.store import Directory

LIST_OPTIONS = ("$filter", "$select", "$top", SKIP_TOKEN)


def list_entities(request: GraphRequest, *, directory: Directory, pages: Pages, page_size: int,
                  schema: EntityType, items: dict[str, JsonObject], scope: str) -> GraphResponse:
    check_options(request.query, LIST_OPTIONS)
    select = parse_select(request.query, schema)
    size = parse_top(request.query, page_size)
    predicate = parse_filter(request.query, schema)
    check_or_clauses(predicate)
    lookup = partial(directory.indexed, schema.entity_set)
    page = pages.page(request, scope=scope, fetch=lambda: matching_ids(items, predicate, lookup),
                      page_size=size)
    value = [project(items[oid], select, schema) for oid in page.items if oid in items]
    return collection_response(select_fragment(scope, select), value, page.next_link)
