"""``/users`` operations, as the v1.0 API reference describes them (learn.microsoft.com/graph/api/):

- ``GET /users`` (user-list): ``$filter``, ``$select``, ``$top``, paging; without ``$select`` only
  the default properties come back (no accountEnabled, employeeId, department...).
- ``POST /users`` (user-post-users): 201 with the new user; accountEnabled, displayName,
  mailNickname, userPrincipalName and passwordProfile are required; userPrincipalName and
  mailNickname must follow Entra ID's rules, on a verified domain (:mod:`.validate`).
- ``GET|PATCH|DELETE /users/{id | userPrincipalName}`` (user-get, user-update: 204, user-delete: 204).
- ``POST /users/{id}/revokeSignInSessions`` (user-revokesigninsessions): 200 with an Edm.Boolean.
- ``GET /users/{id}/memberOf`` and its ``microsoft.graph.group`` cast (user-list-memberof).
- ``GET /users/{id}/manager``, ``PUT|DELETE /users/{id}/manager/$ref`` (user-post-manager...).
- ``GET /users/delta`` (user-delta), also reached as ``delta()`` the way the SDK calls it.
"""

from __future__ import annotations

from provisioner.sandbox.graph.delta import DeltaQuery
from provisioner.sandbox.graph.dispatch import Router
from provisioner.sandbox.graph.errors import not_found
from provisioner.sandbox.graph.listing import list_entities
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse
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
from provisioner.sandbox.graph.validate import UserRules

_EDM_BOOLEAN = "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean"


class UserRoutes:
    """Handlers for the user operations; each takes a request and returns a response."""

    def __init__(self, directory: Directory, pages: Pages, delta: DeltaQuery, page_size: int,
                 rules: UserRules | None = None) -> None:
        self._rules = rules or UserRules()
        self._directory = directory
        self._pages = pages
        self._delta = delta
        self._page_size = page_size

    def register(self, router: Router) -> None:
        # Costs in resource units from Graph's table: GET users 2, me/memberOf 2, others 1.
        router.add("GET", "/users", self.list_users, cost=2)
        router.add("POST", "/users", self.create_user)
        router.add("GET", ("/users/delta", "/users/delta()", "/users/microsoft.graph.delta()"), self.delta)
        router.add("GET", "/users/{user_id}", self.get_user)
        router.add("PATCH", "/users/{user_id}", self.update_user)
        router.add("DELETE", "/users/{user_id}", self.delete_user)
        router.add(
            "POST",
            (
                "/users/{user_id}/revokeSignInSessions",
                "/users/{user_id}/microsoft.graph.revokeSignInSessions",
            ),
            self.revoke_sign_in_sessions,
        )
        router.add("GET", "/users/{user_id}/memberOf", self.member_of, cost=2)
        router.add(
            "GET",
            ("/users/{user_id}/memberOf/microsoft.graph.group", "/users/{user_id}/memberOf/graph.group"),
            self.member_of_groups,
            cost=2,
        )
        router.add("GET", "/users/{user_id}/manager", self.get_manager)
        router.add("PUT", "/users/{user_id}/manager/$ref", self.set_manager)
        router.add("DELETE", "/users/{user_id}/manager/$ref", self.remove_manager)

    def list_users(self, request: GraphRequest) -> GraphResponse:
        return list_entities(request, directory=self._directory, pages=self._pages,
                             page_size=self._page_size, schema=USER, items=self._directory.users,
                             scope="users")

    def create_user(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        USER.check_body(body, creating=True)
        self._rules.check(body)
        user = self._directory.create_user(body)
        return GraphResponse(
            201, {"@odata.context": context_url("users/$entity"), **project(user, None, USER)}
        )

    def delta(self, request: GraphRequest) -> GraphResponse:
        return self._delta.respond(request, USER)

    def get_user(self, request: GraphRequest) -> GraphResponse:
        check_options(request.query, ("$select",))
        select = parse_select(request.query, USER)
        user = self._directory.require_user(request.params["user_id"])
        context = context_url(select_fragment("users", select) + "/$entity")
        return GraphResponse(200, {"@odata.context": context, **project(user, select, USER)})

    def update_user(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        USER.check_body(body, creating=False)
        self._rules.check(body)
        self._directory.update_user(request.params["user_id"], body)
        return GraphResponse(204)

    def delete_user(self, request: GraphRequest) -> GraphResponse:
        self._directory.delete_user(request.params["user_id"])
        return GraphResponse(204)

    def revoke_sign_in_sessions(self, request: GraphRequest) -> GraphResponse:
        self._directory.revoke_sessions(request.params["user_id"])
        return GraphResponse(200, {"@odata.context": _EDM_BOOLEAN, "value": True})

    def member_of(self, request: GraphRequest) -> GraphResponse:
        return self._groups_of(request, "directoryObjects")

    def member_of_groups(self, request: GraphRequest) -> GraphResponse:
        return self._groups_of(request, "groups")

    def get_manager(self, request: GraphRequest) -> GraphResponse:
        check_options(request.query, ("$select",))
        select = parse_select(request.query, USER)
        user = self._directory.require_user(request.params["user_id"])
        manager_id = self._directory.manager_of(user["id"])
        if manager_id is None:
            raise not_found(f"{user['id']}/manager")
        manager = self._directory.users[manager_id]
        return GraphResponse(
            200,
            {
                "@odata.context": context_url("directoryObjects/$entity"),
                **project(manager, select, USER, typed=True),
            },
        )

    def set_manager(self, request: GraphRequest) -> GraphResponse:
        body = require_object(request.body)
        self._directory.set_manager(request.params["user_id"], reference_id(body.get("@odata.id")))
        return GraphResponse(204)

    def remove_manager(self, request: GraphRequest) -> GraphResponse:
        self._directory.remove_manager(request.params["user_id"])
        return GraphResponse(204)

    def _groups_of(self, request: GraphRequest, entity_set: str) -> GraphResponse:
        check_options(request.query, ("$select", "$top", SKIP_TOKEN))
        select = parse_select(request.query, GROUP)
        page_size = parse_top(request.query, self._page_size)
        user = self._directory.require_user(request.params["user_id"])
        groups = self._directory.groups
        page = self._pages.page(
            request,
            scope=f"memberOf {user['id']}",
            fetch=lambda: [gid for gid in self._directory.groups_of(user["id"]) if gid in groups],
            page_size=page_size,
        )
        value = [project(groups[gid], select, GROUP, typed=True) for gid in page.items if gid in groups]
        return collection_response(select_fragment(entity_set, select), value, page.next_link)
