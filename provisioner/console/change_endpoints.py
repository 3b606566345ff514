"""Console pages for change control: approvals (one or many), held mass changes, policy
rollouts. Each decision goes through the service the HTTP API uses, recorded with the signed-in
person (``console:<name>``) as who decided, and in the audit trail as a console action."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from provisioner import limits
from provisioner.api.deps import SessionDep
from provisioner.change_control import approvals_service
from provisioner.change_control.holds import service as holds
from provisioner.change_control.rollouts import service as rollouts
from provisioner.clock import utcnow
from provisioner.console import service
from provisioner.console.web import Decider, Viewer, form_ids, page, wake_after_commit
from provisioner.rollouts import repository as rollout_repository

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=limits.ROW_ID_MAX)]
Comment = Annotated[str, Form(max_length=2000)]


def _back(where: str, message: str, *, error: bool = False) -> RedirectResponse:
    key = "error" if error else "done"
    return RedirectResponse(f"/console/{where}?{key}={quote(message)}", status_code=303)


@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: Request, user: Viewer, session: SessionDep, done: str | None = None,
              error: str | None = None) -> HTMLResponse:
    rows = approvals_service.listing(session, utcnow(), status="pending", limit=500)
    return page(request, "approvals.html", user, requests=rows, done=done, error=error)


@router.post("/approvals/decide")
async def decide(request: Request, user: Decider, session: SessionDep,
                 decision: Annotated[str, Form(pattern="^(approve|reject)$")], comment: Comment = ""):
    """Approve or reject the ticked requests (one or many) with a comment."""
    ids = await form_ids(request)
    if not ids:
        return _back("approvals", "tick at least one request", error=True)
    try:
        outcome = approvals_service.decide(
            session, request.app.state.planning, ids=ids, approve=decision == "approve", actor=user.actor,
            comment=comment or None, expires_at=None, now=utcnow(),
            max_days=request.app.state.settings.approval_max_days)
    except approvals_service.DecisionError as exc:
        return _back("approvals", str(exc), error=True)
    decided = [d["id"] for d in outcome.decided]
    service.record(session, user, f"approvals.{decision}", None, ids=decided, comment=comment or None,
                   refused=[{"id": r.id, "reason": r.reason} for r in outcome.refused])
    wake_after_commit(request, session)
    refused = "; ".join(f"#{r.id}: {r.reason}" for r in outcome.refused)
    verb = "approved" if decision == "approve" else "rejected"
    return _back("approvals", f"{verb} {len(decided)} request(s)" + (f"; refused {refused}" if refused else ""),
                 error=bool(refused) and not decided)


@router.get("/holds", response_class=HTMLResponse)
def hold_sets(request: Request, user: Viewer, session: SessionDep, done: str | None = None,
              error: str | None = None) -> HTMLResponse:
    now = utcnow()
    held = [holds.detail(session, h.id, now) for h in holds.listing(session, "held", 100, now)]
    return page(request, "holds.html", user, holds=held, done=done, error=error)


@router.post("/holds/{hold_id}/{decision}")
def decide_hold(hold_id: RowId, decision: Annotated[str, Path(pattern="^(release|cancel)$")], request: Request,
                user: Decider, session: SessionDep, comment: Comment = ""):
    """Release a held set (its operations run as planned) or cancel it (withdrawn, recorded)."""
    fn = holds.release if decision == "release" else holds.cancel
    try:
        result = fn(session, hold_id, user.actor, comment or None, utcnow())
    except holds.HoldError as exc:
        return _back("holds", str(exc), error=True)
    service.record(session, user, f"hold.{decision}", str(hold_id), hold_id=hold_id, comment=comment or None,
                   operations=result.operations, people=len(result.people))
    wake_after_commit(request, session)
    return _back("holds", f"hold set {hold_id} {'released' if decision == 'release' else 'cancelled'}")


@router.post("/holds/{hold_id}/people/decide")
async def decide_hold_people(hold_id: RowId, request: Request, user: Decider, session: SessionDep,
                             decision: Annotated[str, Form(pattern="^(release|cancel)$")], comment: Comment = ""):
    """Release or cancel the held work of the ticked people of a set; the others stay held."""
    form = await request.form()
    people = [v for v in form.getlist("people") if isinstance(v, str) and v][:1000]
    if not people:
        return _back("holds", "tick at least one person", error=True)
    try:
        result = holds.decide_people(session, hold_id, people, release_them=decision == "release", by=user.actor,
                                     comment=comment or None, now=utcnow())
    except holds.HoldError as exc:
        return _back("holds", str(exc), error=True)
    service.record(session, user, f"hold.{decision}", str(hold_id), hold_id=hold_id, part=result.hold.id,
                   comment=comment or None, operations=result.operations, people=result.people)
    wake_after_commit(request, session)
    verb = "released" if decision == "release" else "cancelled"
    return _back("holds", f"hold set {hold_id}: {verb} for {len(result.people)} person(s)")


@router.get("/rollouts", response_class=HTMLResponse)
def rollout_list(request: Request, user: Viewer, session: SessionDep, done: str | None = None,
                 error: str | None = None) -> HTMLResponse:
    rows = [rollouts.summary(r) for r in rollout_repository.recent(session, 50, None)]
    return page(request, "rollouts.html", user, rollouts=rows, done=done, error=error)


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_detail(rollout_id: RowId, request: Request, user: Viewer, session: SessionDep,
                   target: str | None = None, group: str | None = None, person: str | None = None,
                   ) -> HTMLResponse:
    row = rollout_repository.get(session, rollout_id)
    if row is None:
        return page(request, "forbidden.html", user, status_code=404, message=f"no policy rollout {rollout_id}")
    view = rollouts.view(row, target=target or None, group=group or None, person=person or None)
    return page(request, "rollout.html", user, r=view, target=target, group=group, person=person)


@router.post("/rollouts/{rollout_id}/approve")
async def approve_rollout(rollout_id: RowId, request: Request, user: Decider, comment: Comment = ""):
    state = request.app.state
    if getattr(state, "planning", None) is None:
        return _back("rollouts", "this process does not plan: approve on a 'provisioner serve' process", error=True)
    try:
        result = await run_in_threadpool(rollouts.approve, state.db, state.planning, state.settings, rollout_id,
                                         user.actor, comment or None)
    except rollouts.RolloutDecisionError as exc:
        return _back("rollouts", str(exc), error=True)
    with state.db.transaction() as session:
        service.record(session, user, "rollout.approve", str(rollout_id), rollout_id=rollout_id,
                       comment=comment or None, outcome=result.outcome)
        wake_after_commit(request, session)  # the rollout's work was committed by approve()
    return _back("rollouts", f"rollout {rollout_id} approved: {result.replanned} people re-planned")


@router.post("/rollouts/{rollout_id}/reject")
def reject_rollout(rollout_id: RowId, request: Request, user: Decider, session: SessionDep, comment: Comment = ""):
    try:
        rollouts.reject(session, rollout_id, user.actor, comment or None)
    except rollouts.RolloutDecisionError as exc:
        return _back("rollouts", str(exc), error=True)
    service.record(session, user, "rollout.reject", str(rollout_id), rollout_id=rollout_id, comment=comment or None)
    return _back("rollouts", f"rollout {rollout_id} rejected")
