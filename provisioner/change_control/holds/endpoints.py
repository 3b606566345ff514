"""``/change-control/holds``: held mass changes, read by viewers, auditors and approvers,
released or cancelled by approvers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from provisioner import limits
from provisioner.api.deps import SessionDep
from provisioner.api.problems import Problem
from provisioner.api.responses import APPROVER, READER, contract, problems
from provisioner.change_control.access import approver, reader
from provisioner.change_control.holds import service
from provisioner.change_control.holds.schemas import HoldDecisionIn, HoldDecisionOut, HoldSetDetail, HoldSetOut
from provisioner.clock import utcnow

router = APIRouter(prefix="/change-control/holds", tags=["change control"])
Reader = Annotated[str, Depends(reader)]
Approver = Annotated[str, Depends(approver)]
RowId = Annotated[int, Path(ge=1, le=limits.ROW_ID_MAX)]


@router.get("", responses=problems(400, 401, 403), openapi_extra=contract(security=READER))
def list_holds(_: Reader, session: SessionDep,
               status: Literal["held", "released", "cancelled"] | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[HoldSetOut]:
    """Hold sets, newest first, with how many operations and people are still held."""
    return service.listing(session, status, limit, utcnow())


@router.get("/{hold_id}", responses=problems(400, 401, 403, 404), openapi_extra=contract(security=READER))
def show_hold(hold_id: RowId, _: Reader, session: SessionDep) -> HoldSetDetail:
    """One hold set and its operations: who would lose what, and why."""
    try:
        return service.detail(session, hold_id, utcnow())
    except service.HoldError as exc:
        raise Problem(exc.status, "Not found", str(exc)) from None


@router.post("/{hold_id}/release", responses=problems(400, 401, 403, 404, 409), openapi_extra=contract(security=APPROVER))
def release_hold(hold_id: RowId, who: Approver, session: SessionDep, request: Request,
                 body: HoldDecisionIn | None = None) -> HoldDecisionOut:
    """Send the held operations to the targets (they run as planned, at once: this process's
    worker is woken when the release commits): all, or those of ``employee_ids``."""
    return _decide(True, session, hold_id, who, body, wake=getattr(request.app.state, "wake_worker", None))


@router.post("/{hold_id}/cancel", responses=problems(400, 401, 403, 404, 409), openapi_extra=contract(security=APPROVER))
def cancel_hold(hold_id: RowId, who: Approver, session: SessionDep,
                body: HoldDecisionIn | None = None) -> HoldDecisionOut:
    """Withdraw the held operations (recorded): all, or those of ``employee_ids``; people's state
    stays as their source said."""
    return _decide(False, session, hold_id, who, body)


def _decide(release: bool, session, hold_id: int, who: str, body: HoldDecisionIn | None,
            wake: Callable[[], None] | None = None) -> HoldDecisionOut:
    now = utcnow()
    comment = body.comment if body else None
    try:
        if body is not None and body.employee_ids is not None:
            decision = service.decide_people(session, hold_id, body.employee_ids, release_them=release, by=who,
                                             comment=comment, now=now, wake=wake)
        elif release:
            decision = service.release(session, hold_id, who, comment, now, wake=wake)
        else:
            decision = service.cancel(session, hold_id, who, comment, now)
    except service.HoldError as exc:
        raise Problem(exc.status, "Not found" if exc.status == 404 else "Conflict", str(exc)) from None
    return service.decision_out(decision, now)
