"""Inspection routes of the standalone Graph sandbox, for benchmarks run against it as a process.

Not part of Graph and never called by the service: they sit outside ``/v1.0``, need the sandbox's
bearer token, are not counted in :class:`.stats.SandboxStats` and cost no throttle quota.

- ``GET /_sandbox/stats``: the exact counters (``writes``, ``http_calls``, ``sub_requests``...),
  the calls per method (``by_method``) and per operation (``by_route``), and the size of the
  tenant (``users``; ``memberships``: group-member links over all groups).
- ``GET /_sandbox/tenant``: every user as ``[id, employeeId, userPrincipalName, accountEnabled]``
  and every group's member ids by display name: the read-back of a whole tenant in one request.
- ``GET /_sandbox/people``: every user's HR properties (``employeeId``, ``employeeHireDate``,
  ``employeeLeaveDateTime``, ``employeeOrgData``, ``companyName``, ``employeeType``,
  ``officeLocation``, ``department``, ``jobTitle``) and ``manager`` (the manager's id or null), by id.
- ``POST /_sandbox/drift`` ``{"remove": [[group_id, user_id], ...], "add": [...]}``: change
  memberships behind the service's back (recorded for delta queries, as in Entra).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from provisioner.sandbox.graph.errors import GraphError, error_response

if TYPE_CHECKING:
    from provisioner.sandbox.graph.app import GraphSandbox

PREFIX = "/_sandbox"
PEOPLE_PROPERTIES = ("employeeId", "userPrincipalName", "employeeHireDate", "employeeLeaveDateTime",
                     "employeeOrgData", "companyName", "employeeType", "officeLocation", "department",
                     "jobTitle", "givenName", "surname", "displayName", "usageLocation")


def register(app: FastAPI, sandbox: GraphSandbox) -> None:
    """Add the inspection routes to the sandbox's app."""

    def guarded(handler: Any) -> Any:
        async def route(request: Request) -> Any:
            headers = {name.lower(): value for name, value in request.headers.items()}
            try:
                sandbox._authenticate(headers)
            except GraphError as error:
                answer = error_response(error, None)
                return JSONResponse(answer.body, status_code=answer.status)
            body = await request.json() if request.method == "POST" else None
            return JSONResponse(handler(body))
        return route

    def stats(_: Any) -> dict[str, Any]:
        s, directory = sandbox.stats, sandbox._directory
        by_method: Counter[str] = Counter()
        for route, count in s.calls_by_route.items():
            by_method[route.split(" ", 1)[0]] += count
        return {"http_calls": s.http_calls, "batch_calls": s.batch_calls, "sub_requests": s.sub_requests,
                "writes": s.writes, "reads": s.reads, "throttled": s.throttled,
                "by_method": dict(by_method), "by_route": dict(s.calls_by_route),
                "users": len(directory.users),
                "memberships": sum(len(directory.member_ids(g)) for g in directory.groups)}

    def tenant(_: Any) -> dict[str, Any]:
        directory = sandbox._directory
        users = [[u["id"], u.get("employeeId"), u.get("userPrincipalName"), bool(u.get("accountEnabled"))]
                 for u in directory.users.values()]
        groups: dict[str, list[str]] = {}
        for group_id, group in directory.groups.items():
            groups.setdefault(str(group.get("displayName")), []).extend(directory.member_ids(group_id))
        ids = {str(g.get("displayName")): gid for gid, g in directory.groups.items()}
        return {"users": users, "groups": groups, "group_ids": ids}

    def people(_: Any) -> dict[str, Any]:
        directory = sandbox._directory
        return {user_id: {**{name: user.get(name) for name in PEOPLE_PROPERTIES},
                          "manager": directory.manager_of(user_id)}
                for user_id, user in directory.users.items()}

    def drift(body: Any) -> dict[str, Any]:
        for group_id, user_id in (body or {}).get("remove", []):
            sandbox.remove_member_directly(group_id, user_id)
        for group_id, user_id in (body or {}).get("add", []):
            sandbox.add_member_directly(group_id, user_id)
        return {"removed": len((body or {}).get("remove", [])), "added": len((body or {}).get("add", []))}

    app.add_api_route(f"{PREFIX}/stats", guarded(stats), methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{PREFIX}/tenant", guarded(tenant), methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{PREFIX}/people", guarded(people), methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{PREFIX}/drift", guarded(drift), methods=["POST"], include_in_schema=False)
