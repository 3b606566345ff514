"""``GET /identities/{employee_id}/plan``: the access diff IT reviews before it happens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from provisioner.api.auth import require_scope
from provisioner.api.problems import Problem
from provisioner.api.responses import ADMIN, contract, problems
from provisioner.planner.preview import UnknownEmployee, preview

router = APIRouter(tags=["plans"])


@router.get("/identities/{employee_id}/plan", responses=problems(401, 403, 404),
            openapi_extra=contract(security=ADMIN))
async def plan_preview(request: Request, employee_id: str) -> dict[str, Any]:
    await run_in_threadpool(require_scope, request, "admin")
    try:
        steps = await run_in_threadpool(preview, request.app.state.db, request.app.state.planning, employee_id)
    except UnknownEmployee as exc:
        raise Problem(404, "Not found", str(exc)) from exc
    return {"employee_id": employee_id, "steps": steps}
