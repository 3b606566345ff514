"""``/groups`` operations, as the v1.0 API reference describes them (learn.microsoft.com/graph/api/):

- ``GET /groups`` (group-list): ``$filter``, ``$select``, ``$top``, paging.
- ``POST /groups`` (group-post-groups): 201; displayName, mailEnabled, mailNickname and
  securityEnabled are required; ``members@odata.bind`` may add up to 20 members.
- ``GET /groups/{id}`` (group-get) and ``PATCH /groups/{id}`` (group-update: 204), whose
  ``members@odata.bind`` adds up to 20 members in one request, all or nothing: more than 20 is
  400, a reference that is already a member is 400 ("One or more added object references already
  exist..."), an unknown object is 404, and nothing is applied on any error.
- ``GET /groups/{id}/members`` and its ``microsoft.graph.user`` cast (group-list-members).
- ``POST /groups/{id}/members/$ref`` (group-post-members): 204; 400 if already a member.
- ``DELETE /groups/{id}/members/{memberId}/$ref`` (group-delete-members): 204; 404 if not a member.
- ``GET /groups/delta`` (group-delta), also reached as ``delta()``.

Membership of dynamic groups (``groupTypes`` containing ``DynamicMembership``) can't be edited: 400.
"""

from __future__ import annotations

from typing import Any

from provisioner.sandbox.graph.delta import DeltaQuery
from provisioner.sandbox.graph.dispatch import Router
from provisioner.sandbox.graph.errors import bad_request
from provisioner.sandbox.graph.listing import list_entities
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse, JsonObject
from provisioner.sandbox.graph.odata import (
    check_options,
    collection_response,
    context_url,
    parse_select,
    parse_top,
    project,
    reference_id,
    require_object,
    select_fragment,
)
from provisioner.sandbox.graph.paging import SKIP_TOKEN, Pages
from provisioner.sandbox.graph.schema import GROUP, USER
from provisioner.sandbox.graph.store import Directory

MEMBERS_BIND = "members@odata.bind"
MAX_BIND_REFERENCES = 20


class GroupRoutes:
    """Handlers for the group operations; each takes a request and returns a response."""

    def __init__(self, directory: Directory, pages: Pages, delta: DeltaQuery, page_size: int) -> None:
        self._directory = directory
        self._pages = pages
        self._delta = delta
        self._page_size = page_size

    def register(self, router: Router) -> None:
        # Costs in resource units from Graph's table: GET groups/{id}/members 3, others 1.
        router.add("GET", "/groups", self.list_groups)
        router.add("POST", "/groups", self.create_group)
        router.add("GET", ("/groups/delta", "/groups/delta()", "/groups/microsoft.graph.delta()"), self.delta)
        router.add("GET", "/groups/{group_id}", self.get_group)
        router.add("PATCH", "/groups/{group_id}", self.update_group)
        router.add("GET", "/groups/{group_id}/members", self.members, cost=3)
        router.add(
            "GET",
            ("/groups/{group_id}/members/microsoft.graph.user", "/groups/{group_id}/members/graph.user"),
            self.user_members,
            cost=3,
        )
        router.add("POST", "/groups/{group_id}/members/$ref", self.add_member)
        router.add("DELETE", "/groups/{group_id}/members/{member_id}/$ref", self.remove_member)

    def list_groups(self, request: GraphRequest) -> GraphResponse:
        return list_entities(request, directory=self._directory, pages=self._pages,
                             page_size=self._page_size, schema=GROUP, items=self._directory.groups,
                             scope="groups")

    def create_group(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        GROUP.check_body(body, creating=True, extra=frozenset({MEMBERS_BIND}))
        member_ids = _bound_member_ids(body)
        group = self._directory.create_group(_without_bind(body), member_ids=member_ids)
        return GraphResponse(
            201, {"@odata.context": context_url("groups/$entity"), **project(group, None, GROUP)}
        )

    def delta(self, request: GraphRequest) -> GraphResponse:
        return self._delta.respond(request, GROUP)

    def get_group(self, request: GraphRequest) -> GraphResponse:
        check_options(request.query, ("$select",))
        select = parse_select(request.query, GROUP)
        group = self._directory.require_group(request.params["group_id"])
        context = context_url(select_fragment("groups", select) + "/$entity")
        return GraphResponse(200, {"@odata.context": context, **project(group, select, GROUP)})

    def update_group(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        GROUP.check_body(body, creating=False, extra=frozenset({MEMBERS_BIND}))
        member_ids = _bound_member_ids(body)
        self._directory.update_group(
            request.params["group_id"], _without_bind(body), add_member_ids=member_ids
        )
        return GraphResponse(204)

    def members(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, users_only=False)

    def user_members(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, users_only=True)

    def add_member(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        member_id = reference_id(body.get("@odata.id"))
        self._directory.add_members(request.params["group_id"], [member_id])
        return GraphResponse(204)

    def remove_member(self, request: GraphRequest) -> GraphResponse:
        self._directory.remove_member(request.params["group_id"], request.params["member_id"])
        return GraphResponse(204)

    def _members(self, request: GraphRequest, *, users_only: bool) -> GraphResponse:
        check_options(request.query, ("$select", "$top", SKIP_TOKEN))
        select = parse_select(request.query, USER, extra=() if users_only else GROUP.readable)
        page_size = parse_top(request.query, self._page_size)
        group = self._directory.require_group(request.params["group_id"])
        directory = self._directory
        page = self._pages.page(
            request,
            scope=f"members {group['id']} {users_only}",
            fetch=lambda: [
                member_id
                for member_id in directory.member_ids(group["id"])
                if not users_only or member_id in directory.users
            ],
            page_size=page_size,
        )
        value: list[JsonObject] = []
        for member_id in page.items:
            if member_id in directory.users:
                value.append(project(directory.users[member_id], select, USER, typed=True))
            elif member_id in directory.groups:
                value.append(project(directory.groups[member_id], select, GROUP, typed=True))
        fragment = select_fragment("users" if users_only else "directoryObjects", select)
        return collection_response(fragment, value, page.next_link)


def _bound_member_ids(body: JsonObject) -> list[str]:
    references: Any = body.get(MEMBERS_BIND, [])
    if not isinstance(references, list):
        raise bad_request(f"Invalid value for '{MEMBERS_BIND}': a list of object references is expected.")
    if len(references) > MAX_BIND_REFERENCES:
        # Graph's limit on the references one request may add (group-update); wording is the sandbox's.
        raise bad_request(
            f"At most {MAX_BIND_REFERENCES} members can be added in one request; "
            f"{len(references)} were given."
        )
    return [reference_id(reference) for reference in references]


def _without_bind(body: JsonObject) -> JsonObject:
    return {name: value for name, value in body.items() if name != MEMBERS_BIND}
