"""Change control over HTTP: pending approvals with their diffs, decisions (single and bulk),
separation-of-duties flags, conflicts and exceptions, and a re-plan asked for by a token.

Reads: any role (viewer, auditor, approver, admin). Decisions: approver or admin; a viewer's or
an auditor's token gets 403. Every decision records the token as who decided (``token:<name>``,
``change_control.actors``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from provisioner.api.auth import scope_dependency
from provisioner.api.deps import SessionDep
from provisioner.api.problems import Problem
from provisioner.api.responses import ADMIN, APPROVER, READER, contract, problems
from provisioner.change_control import approvals_service as service
from provisioner.change_control import sod_service
from provisioner.change_control.access import READ_SCOPES, approver
from provisioner.change_control.approvals_schemas import (
    INT_MAX,
    BulkDecisionIn,
    DecisionIn,
    ExceptionIn,
    ExceptionRevokeIn,
)
from provisioner.change_control.models import RequestKind, RequestStatus
from provisioner.clock import utcnow
from provisioner.identities import repository as identities

router = APIRouter(tags=["change control"])
Reader = Annotated[str, Depends(scope_dependency(READ_SCOPES))]
Approver = Annotated[str, Depends(approver)]  # token:<name>
Admin = Annotated[str, Depends(scope_dependency("admin"))]
RequestIdPath = Annotated[int, Path(ge=1, le=INT_MAX)]
Status = Literal["pending", "approved", "rejected", "expired", "revoked", "withdrawn", "ended"]


def _invalid(exc: service.DecisionError) -> Problem:
    return Problem(400, "Invalid request", str(exc), type_="urn:provisioner:problem:validation",
                   errors=[{"field": exc.field, "message": str(exc).split(": ", 1)[-1]}])


def _wake(request: Request) -> None:
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()


@router.get("/approvals", responses=problems(400, 401, 403), openapi_extra=contract(security=READER))
def list_approvals(_: Reader, session: SessionDep, status: Status | None = "pending",
                   kind: Literal["approval", "sod"] | None = None, employee_id: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
    """Requests (pending by default) with their diff: person, target, group, the granting policies."""
    identity_id = None
    if employee_id is not None:
        person = identities.by_employee_id(session, employee_id)
        if person is None:
            return {"requests": []}
        identity_id = person.id
    return {"requests": service.listing(session, utcnow(), status=status, kind=kind, identity_id=identity_id,
                                        limit=limit)}


@router.get("/approvals/{request_id}", responses=problems(400, 401, 403, 404), openapi_extra=contract(security=READER))
def show_approval(request_id: RequestIdPath, _: Reader, session: SessionDep) -> dict[str, Any]:
    found = service.show(session, request_id, utcnow())
    if found is None:
        raise Problem(404, "Not found", f"no approval request {request_id}")
    return found


def _decide(request: Request, session, actor: str, ids: list[int] | None, body: DecisionIn, approve: bool):
    settings = request.app.state.settings
    try:
        outcome = service.decide(session, request.app.state.planning, ids=ids, approve=approve, actor=actor,
                                 comment=body.comment, expires_at=body.expires_at if approve else None,
                                 now=utcnow(), max_days=settings.approval_max_days)
    except service.DecisionError as exc:
        raise _invalid(exc) from None
    return outcome


@router.post("/approvals/decisions", responses=problems(400, 401, 403),
             openapi_extra=contract(security=APPROVER))
def decide_many(body: BulkDecisionIn, request: Request, actor: Approver, session: SessionDep) -> dict[str, Any]:
    """Approve or reject many requests (``ids`` or ``all``); those that cannot be decided (your
    own, already decided, unknown) are listed in ``refused`` with the reason, the others decided."""
    outcome = _decide(request, session, actor, None if body.all else body.ids, body, body.decision == "approve")
    _wake(request)
    return outcome.as_json()


@router.post("/approvals/{request_id}/{decision}", responses=problems(400, 401, 403, 404, 409),
             openapi_extra=contract(security=APPROVER))
def decide_one(request_id: RequestIdPath, decision: Literal["approve", "reject"], body: DecisionIn, request: Request,
               actor: Approver, session: SessionDep) -> dict[str, Any]:
    """Approve (the grant is applied) or reject (it is not, and is not asked again while the
    person's attributes stay the same) one request. Your own request: 403."""
    if decision == "reject" and body.expires_at is not None:
        raise Problem(400, "Invalid request", "expires_at: only an approval can expire",
                      type_="urn:provisioner:problem:validation",
                      errors=[{"field": "expires_at", "message": "only an approval can expire"}])
    outcome = _decide(request, session, actor, [request_id], body, decision == "approve")
    if outcome.refused:
        refusal = outcome.refused[0]
        raise Problem(refusal.status, {403: "Forbidden", 404: "Not found", 409: "Conflict"}[refusal.status],
                      refusal.reason)
    _wake(request)
    return outcome.decided[0]


@router.get("/sod/conflicts", responses=problems(401, 403), openapi_extra=contract(security=READER))
def sod_conflicts(_: Reader, request: Request, session: SessionDep) -> dict[str, Any]:
    """Grants blocked by a rule (waiting for an exception or a policy fix), and the people who hold
    a conflict now (with their exception, if any)."""
    return {"blocked": service.listing(session, utcnow(), kind=RequestKind.SOD),
            "held": sod_service.held_conflicts(session, request.app.state.planning)}


@router.get("/sod/exceptions", responses=problems(401, 403), openapi_extra=contract(security=READER))
def sod_exceptions(_: Reader, session: SessionDep) -> dict[str, Any]:
    """Exceptions in force, with who granted them, why and until when."""
    return {"exceptions": service.listing(session, utcnow(), kind=RequestKind.SOD, status=RequestStatus.APPROVED)}


@router.post("/sod/exceptions", status_code=201, responses=problems(400, 401, 403, 404),
             openapi_extra=contract(security=APPROVER))
def grant_sod_exception(body: ExceptionIn, request: Request, actor: Approver, session: SessionDep) -> dict[str, Any]:
    """Let a person hold the groups a rule blocked for them until ``expires_at`` (then revoked)."""
    try:
        granted = sod_service.grant_exception(
            session, request.app.state.planning, employee_id=body.employee_id, rule=body.rule, actor=actor,
            comment=body.comment, expires_at=body.expires_at, now=utcnow(),
            max_days=request.app.state.settings.sod_exception_max_days)
    except service.DecisionError as exc:
        raise _invalid(exc) from None
    except sod_service.SodError as exc:
        raise Problem(exc.status, "Forbidden" if exc.status == 403 else "Not found", str(exc)) from None
    _wake(request)
    return {"exception": granted}


@router.post("/sod/exceptions/revoke", responses=problems(400, 401, 403, 404),
             openapi_extra=contract(security=APPROVER))
def revoke_sod_exception(body: ExceptionRevokeIn, request: Request, actor: Approver,
                         session: SessionDep) -> dict[str, Any]:
    """End a person's exception now: the excepted groups are removed (and read back)."""
    try:
        revoked = sod_service.revoke_exception(session, request.app.state.planning, employee_id=body.employee_id,
                                               rule=body.rule, actor=actor, comment=body.comment, now=utcnow())
    except service.DecisionError as exc:
        raise _invalid(exc) from None
    except sod_service.SodError as exc:
        raise Problem(exc.status, "Not found", str(exc)) from None
    _wake(request)
    return {"revoked": revoked}


@router.post("/identities/{employee_id}/replan", responses=problems(401, 403, 404),
             openapi_extra=contract(security=ADMIN))
def replan(employee_id: str, request: Request, actor: Admin, session: SessionDep) -> dict[str, Any]:
    """Plan a person again now; what the plan asks approval for records this token as requester
    (who then cannot approve it)."""
    result = service.request_plan(session, request.app.state.planning, employee_id, actor)
    if result is None:
        raise Problem(404, "Not found", f"no identity for employee {employee_id!r}")
    _wake(request)
    return {"employee_id": employee_id, "plan_id": result.plan.id, **result.diff}
