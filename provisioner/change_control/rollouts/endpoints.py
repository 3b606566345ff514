"""``/change-control/rollouts``: policy rollouts and their diffs (readers), approved or rejected
by approvers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from provisioner import limits
from provisioner.api.deps import SessionDep
from provisioner.api.problems import Problem
from provisioner.api.responses import APPROVER, READER, contract, problems
from provisioner.change_control.access import approver, reader
from provisioner.change_control.holds.schemas import DecisionIn
from provisioner.change_control.rollouts import service
from provisioner.rollouts import repository

router = APIRouter(prefix="/change-control/rollouts", tags=["change control"])
Reader = Annotated[str, Depends(reader)]
Approver = Annotated[str, Depends(approver)]
RowId = Annotated[int, Path(ge=1, le=limits.ROW_ID_MAX)]
Status = Literal["applied", "awaiting_approval", "approved", "rejected", "superseded"]


@router.get("", responses=problems(400, 401, 403), openapi_extra=contract(security=READER))
def list_rollouts(_: Reader, session: SessionDep, status: Status | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Policy rollouts, newest first, with their counts (``status=awaiting_approval``: the pending ones)."""
    return [service.summary(r) for r in repository.recent(session, limit, status)]


@router.get("/{rollout_id}", responses=problems(400, 401, 403, 404), openapi_extra=contract(security=READER))
def show_rollout(rollout_id: RowId, _: Reader, session: SessionDep,
                 target: Annotated[str | None, Query(max_length=100)] = None,
                 group: Annotated[str | None, Query(max_length=200)] = None,
                 person: Annotated[str | None, Query(max_length=200, description="employee id")] = None
                 ) -> dict[str, Any]:
    """A rollout and its diff: per target and group who gains and who loses; narrowed to one
    target, one group or one person (the groups that person gains and loses)."""
    row = repository.get(session, rollout_id)
    if row is None:
        raise Problem(404, "Not found", f"no policy rollout {rollout_id}")
    return service.view(row, target=target, group=group, person=person)


@router.post("/{rollout_id}/approve", responses=problems(400, 401, 403, 404, 409, 503, s503="This process does not plan"),
             openapi_extra=contract(security=APPROVER))
async def approve_rollout(request: Request, rollout_id: RowId, who: Approver,
                          body: DecisionIn | None = None) -> dict[str, Any]:
    """Approve a held rollout: recorded, then everyone it affects is re-planned (the answer
    comes when the re-plan is stored; the workers then make the changes)."""
    state = request.app.state
    if getattr(state, "planning", None) is None:  # an API without a planning runtime (never `serve`)
        raise Problem(503, "Service unavailable", "this process does not plan: approve with 'provisioner "
                                                  "rollouts approve' or on a 'provisioner serve' process")
    try:
        result = await run_in_threadpool(service.approve, state.db, state.planning, state.settings, rollout_id,
                                         who, body.comment if body else None)
    except service.RolloutDecisionError as exc:
        raise Problem(exc.status, "Not found" if exc.status == 404 else "Conflict", str(exc)) from None
    wake = getattr(state, "on_events_accepted", None)
    if wake is not None:
        wake()
    return {"rollout_id": rollout_id, "outcome": result.outcome, "replanned": result.replanned,
            "counts": result.counts, "decided_by": who}


@router.post("/{rollout_id}/reject", responses=problems(400, 401, 403, 404, 409),
             openapi_extra=contract(security=APPROVER))
def reject_rollout(rollout_id: RowId, who: Approver, session: SessionDep, body: DecisionIn | None = None
                   ) -> dict[str, Any]:
    """Reject a held rollout: recorded; this policy set is not applied until the policies change."""
    try:
        row = service.reject(session, rollout_id, who, body.comment if body else None)
    except service.RolloutDecisionError as exc:
        raise Problem(exc.status, "Not found" if exc.status == 404 else "Conflict", str(exc)) from None
    return service.summary(row)
