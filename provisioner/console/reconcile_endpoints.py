"""The console's Reconcile page: the last reconciliation runs, a run's drift grouped by kind
(narrowed by target and kind), "fix selected" (approvers and admins) and "run reconcile now"
(admins). Both act through provisioner/reconcile/on_demand.py, as the signed-in person."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from provisioner import limits
from provisioner.api.deps import SessionDep
from provisioner.clock import utcnow
from provisioner.console import reconcile_view, service
from provisioner.console.session import ConsoleUser
from provisioner.console.web import ConsoleForbidden, Decider, Viewer, form_ids, page
from provisioner.reconcile import on_demand

router = APIRouter()
RunId = Annotated[int, Form(ge=1, le=limits.ROW_ID_MAX)]


def _back(message: str, *, error: bool = False, run: int | None = None) -> RedirectResponse:
    query = {"error" if error else "done": message} | ({"run": str(run)} if run else {})
    return RedirectResponse(f"/console/reconcile?{urlencode(query, quote_via=quote)}", status_code=303)


def _runtime(request: Request):
    state = request.app.state
    if getattr(state, "planning", None) is None or getattr(state, "connectors", None) is None:
        return None
    return state


@router.get("/reconcile", response_class=HTMLResponse)
def reconcile_page(request: Request, user: Viewer, session: SessionDep,
                   run: Annotated[int | None, Query(ge=1, le=limits.ROW_ID_MAX)] = None,
                   target: Annotated[str, Query(max_length=100)] = "",
                   kind: Annotated[str, Query(max_length=50)] = "",
                   done: str | None = None, error: str | None = None) -> HTMLResponse:
    view = reconcile_view.page(session, run, target or None, kind or None)
    if run is not None and view["run"] is None:
        return page(request, "forbidden.html", user, status_code=404,
                    message=f"no reconcile run {run} (only the last runs are kept)")
    return page(request, "reconcile.html", user, v=view, target=target, kind=kind, done=done, error=error,
                can_run="admin" in user.roles, now=utcnow())


@router.post("/reconcile/fix")
async def fix_selected(request: Request, user: Decider, run_id: RunId):
    """Fix the ticked drift items of run ``run_id`` through ``reconcile --fix``'s code paths."""
    state = _runtime(request)
    if state is None:
        return _back("this process does not reconcile: fix on a 'provisioner serve' process", error=True, run=run_id)
    ids = await form_ids(request)
    try:
        fixed = await on_demand.fix_selected(state.db, state.planning, state.connectors, state.settings, run_id,
                                             ids, user.actor)
    except (on_demand.SelectionError, on_demand.Busy) as exc:
        return _back(str(exc), error=True, run=run_id)
    with state.db.transaction() as session:
        service.record(session, user, "reconcile.fix", f"run:{run_id}", run_id=run_id, item_ids=ids,
                       new_run_id=fixed.new_run_id, fixed=len(fixed.fixed), not_fixed=len(fixed.not_fixed))
    _wake(request)
    return _back(fixed.summary(), error=bool(fixed.not_fixed) and not fixed.fixed, run=run_id)


@router.post("/reconcile/run")
async def run_now(request: Request, user: Decider):
    """Reconcile every target now (report only): admins."""
    _admin(user)
    state = _runtime(request)
    if state is None:
        return _back("this process does not reconcile: run it on a 'provisioner serve' process", error=True)
    try:
        report = await on_demand.run_now(state.db, state.planning, state.connectors, state.settings, user.actor)
    except on_demand.Busy as exc:
        return _back(str(exc), error=True)
    with state.db.transaction() as session:
        service.record(session, user, "reconcile.run", f"run:{report.run_id}", run_id=report.run_id,
                       drift=len(report.drift), errors=len(report.errors))
    message = f"run {report.run_id}: {len(report.drift)} drift item(s)" + (
        f", {len(report.errors)} error(s)" if report.errors else "")
    return _back(message, run=report.run_id)


def _admin(user: ConsoleUser) -> None:
    if "admin" not in user.roles:
        raise ConsoleForbidden(f"{user.name} is not an admin: admins start a reconciliation")


def _wake(request: Request) -> None:
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
