"""The Graph sandbox: a local emulator of the Microsoft Graph v1.0 calls the service makes.

``GraphSandbox`` holds an in-memory tenant and serves it as a FastAPI app under ``/v1.0``. Every
request, direct or a ``$batch`` item, goes through one pipeline (:meth:`GraphSandbox.execute`):

1. route resolution (unknown path: 400, known path with another method: 405);
2. an injected throttle storm, then an injected 429 fault, answer 429 at no cost;
3. the app+tenant limits (when ``throttle``), which answer 429 with ``Retry-After`` at no cost;
4. the request is counted as a read or a write; an injected non-429 fault answers now;
5. the operation's handler runs against the directory.

Authentication is checked once per HTTP request (batch items inherit the batch's): a bearer token
is required, equal to ``token`` when one was given; otherwise 401 ``InvalidAuthenticationToken``.

Outside ``/v1.0``, ``/_sandbox/...`` (:mod:`.inspect`) gives benchmarks the counters and the
tenant of a sandbox run as a process; the service never calls it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from provisioner.sandbox.graph import inspect
from provisioner.sandbox.graph.batch import BatchProcessor
from provisioner.sandbox.graph.delta import DeltaQuery
from provisioner.sandbox.graph.dispatch import Router
from provisioner.sandbox.graph.errors import (
    INVALID_TOKEN,
    ODATA_BAD_REQUEST,
    GraphError,
    error_response,
    too_many_requests,
)
from provisioner.sandbox.graph.faults import FaultInjector
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse, JsonObject
from provisioner.sandbox.graph.paging import Pages
from provisioner.sandbox.graph.routes_groups import GroupRoutes
from provisioner.sandbox.graph.routes_users import UserRoutes
from provisioner.sandbox.graph.schema import DYNAMIC_MEMBERSHIP
from provisioner.sandbox.graph.stats import SandboxStats
from provisioner.sandbox.graph.store import Directory
from provisioner.sandbox.graph.throttle import GraphThrottle, request_cost
from provisioner.sandbox.graph.validate import UserRules

VERSION_ROOT = "/v1.0"
_JSON = "application/json"
_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


class GraphSandbox:
    """An emulated Entra ID tenant behind the Graph v1.0 endpoints the service uses.

    ``scale`` divides the throttling windows (see :mod:`.throttle`); ``throttle`` turns the limits
    on; ``tenant_size`` picks the resource-unit quota tier (S/M/L) and seeds nothing;
    ``page_size`` is the default page size of collections and delta rounds; ``token`` is the only
    bearer token accepted (any non-empty one when None); ``verified_domains`` are the tenant's
    domains a userPrincipalName may use (default: example.com and the initial onmicrosoft.com one).
    """

    def __init__(
        self,
        scale: float = 1.0,
        throttle: bool = False,
        tenant_size: int = 100,
        page_size: int = 100,
        token: str | None = None,
        verified_domains: Iterable[str] | None = None,
    ) -> None:
        self.stats = SandboxStats()
        self._token = token
        self._directory = Directory()
        self._faults = FaultInjector()
        self._throttle = GraphThrottle(scale=scale, tenant_size=tenant_size) if throttle else None
        pages = Pages()
        delta = DeltaQuery(self._directory, pages, page_size)
        self._router = Router()
        self._user_rules = UserRules(verified_domains)
        UserRoutes(self._directory, pages, delta, page_size, self._user_rules).register(self._router)
        GroupRoutes(self._directory, pages, delta, page_size).register(self._router)
        self._batch = BatchProcessor(self.execute, self.stats)
        self.app = self._build_app()

    # ---- seeding and inspection (no HTTP, not counted in stats) ----------------------------

    def verify_domain(self, domain: str) -> None:
        """Add a verified domain to the tenant (userPrincipalNames may then use it)."""
        self._user_rules.verify_domain(domain)

    def seed_group(self, display_name: str, *, id: str | None = None, dynamic: bool = False) -> str:
        """Create a security group and return its object id."""
        body: JsonObject = {
            "displayName": display_name,
            "mailEnabled": False,
            "mailNickname": "".join(ch for ch in display_name if ch.isalnum()) or "group",
            "securityEnabled": True,
        }
        if dynamic:
            body.update(
                groupTypes=[DYNAMIC_MEMBERSHIP],
                membershipRule=f'user.department -eq "{display_name}"',
                membershipRuleProcessingState="On",
            )
        return str(self._directory.create_group(body, group_id=id)["id"])

    def seed_user(
        self,
        user_principal_name: str,
        *,
        display_name: str | None = None,
        employee_id: str | None = None,
        account_enabled: bool = True,
        mail: str | None = None,
        id: str | None = None,
    ) -> str:
        """Create a user (display name defaults to the UPN's local part) and return its object id."""
        local_part = user_principal_name.partition("@")[0]
        body: JsonObject = {
            "userPrincipalName": user_principal_name,
            "displayName": display_name or local_part,
            "mailNickname": local_part,
            "accountEnabled": account_enabled,
            "employeeId": employee_id,
            "mail": mail,
        }
        return str(self._directory.create_user(body, user_id=id)["id"])

    def user(self, id: str) -> dict[str, Any] | None:
        """A copy of the stored user (every property, selected or not), or None."""
        user = self._directory.users.get(id)
        return dict(user) if user is not None else None

    def manager_of(self, user_id: str) -> str | None:
        """The id of the user's manager (``PUT /users/{id}/manager/$ref``), None without one."""
        return self._directory.manager_of(user_id)

    def users(self) -> list[dict[str, Any]]:
        """Copies of every stored user, in creation order."""
        return [dict(user) for user in self._directory.users.values()]

    def group_member_ids(self, group_id: str) -> set[str]:
        return set(self._directory.member_ids(group_id))

    def add_member_directly(self, group_id: str, user_id: str) -> None:
        """Drift: add a member behind the service's back (recorded for delta queries)."""
        self._directory.add_members(group_id, [user_id])

    def remove_member_directly(self, group_id: str, user_id: str) -> None:
        """Drift: remove a member behind the service's back (recorded for delta queries)."""
        self._directory.remove_member(group_id, user_id)

    def sessions_revoked_at(self, user_id: str) -> datetime | None:
        return self._directory.sessions_revoked_at(user_id)

    def reset_stats(self) -> None:
        self.stats.reset()

    # ---- fault injection -----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        code: str,
        message: str,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``times`` requests or batch items whose method is ``method`` ("*" for
        any) and whose path after ``/v1.0`` (e.g. ``/users/{id}``) matches ``path_regex``
        (``re.search``) with this error. A 429 fault counts as throttled and costs no quota; any
        other fault counts as the read or write it replaced.
        """
        self._faults.fail_next(
            method,
            path_regex,
            status=status,
            code=code,
            message=message,
            times=times,
            retry_after=retry_after,
        )

    def throttle_storm(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests or batch items, whatever they are, with 429."""
        self._faults.throttle_storm(count, retry_after)

    # ---- the pipeline --------------------------------------------------------------------

    def execute(self, request: GraphRequest) -> GraphResponse:
        """Answer one authenticated request or batch item (see the module docstring)."""
        try:
            route, request.params = self._router.resolve(request.method, request.path)
        except GraphError as error:
            return error_response(error, request.headers.get("client-request-id"))
        stats = self.stats
        stats.calls_by_route[route.name] += 1
        try:
            refused = self._faults.storm()
            if refused is not None:
                stats.throttled += 1
                raise refused
            fault = self._faults.match(request.method, request.path)
            if fault is not None and fault.status == 429:
                stats.throttled += 1
                raise self._faults.consume(fault)
            if self._throttle is not None:
                refusal = self._throttle.admit(
                    cost=request_cost(route.cost, request.query), write=route.is_write
                )
                if refusal is not None:
                    stats.throttled += 1
                    raise too_many_requests(
                        refusal.retry_after,
                        "Too many requests: the application exceeded its throttling limit for this tenant.",
                        reason=refusal.reason,
                    )
            if route.is_write:
                stats.writes += 1
                stats.write_times.append(time.monotonic())
            else:
                stats.reads += 1
            if fault is not None:
                raise self._faults.consume(fault)
            return route.handler(request)
        except GraphError as error:
            return error_response(error, request.headers.get("client-request-id"))

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise GraphError(401, INVALID_TOKEN, "Access token is empty.")
        if self._token is not None and credential.strip() != self._token:
            raise GraphError(401, INVALID_TOKEN, "Access token validation failure.")

    async def _handle(self, request: Request, path: str) -> Response:
        self.stats.http_calls += 1
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            self._authenticate(headers)
            graph_request = GraphRequest(
                method=request.method,
                path=f"/{path}",
                query=dict(request.query_params),
                body=_json_body(await request.body()),
                headers=headers,
                base_url=str(request.base_url).rstrip("/") + VERSION_ROOT,
            )
            if graph_request.path == "/$batch" and graph_request.method == "POST":
                self.stats.batch_calls += 1
                response = self._batch.run(graph_request)
            else:
                response = self.execute(graph_request)
        except GraphError as error:
            response = error_response(error, headers.get("client-request-id"))
        return _http_response(response)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Microsoft Graph sandbox", openapi_url=None, docs_url=None, redoc_url=None)
        app.add_api_route(
            VERSION_ROOT + "/{path:path}", self._handle, methods=_METHODS, include_in_schema=False
        )
        inspect.register(app, self)  # /_sandbox/...: counters and the tenant for benchmarks
        return app


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(
            400,
            ODATA_BAD_REQUEST,
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
            "is of valid JSON format.",
        ) from None


def _http_response(response: GraphResponse) -> Response:
    if response.body is None:
        return Response(status_code=response.status, headers=response.headers)
    content = json.dumps(response.body, separators=(",", ":"))
    return Response(content=content, status_code=response.status, headers=response.headers, media_type=_JSON)
