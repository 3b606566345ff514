"""Console pages for operations and people: dead letters (replay one, a selection, all of a
target), people search and a person's page (attributes, accounts, groups, timeline, plan diff)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from provisioner.api.deps import SessionDep
from provisioner.clock import utcnow
from provisioner.console import people, service
from provisioner.console.web import Decider, Viewer, form_ids, page, wake_after_commit
from provisioner.planner.preview import UnknownEmployee, preview
from provisioner.queue import service as queue_service

router = APIRouter()


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters(request: Request, user: Viewer, session: SessionDep,
                 target: Annotated[str | None, Query(max_length=100)] = None,
                 done: str | None = None, error: str | None = None) -> HTMLResponse:
    return page(request, "dead_letters.html", user, target=target, done=done, error=error,
                **service.dead_letters(session, target or None))


@router.post("/dead-letters/replay")
async def replay(request: Request, user: Decider, session: SessionDep,
                 target: Annotated[str, Form(max_length=100)] = ""):
    """Replay the ticked operations, or every dead operation of ``target`` (the "all" button)."""
    form = await request.form()
    if form.get("scope") == "target" and target:
        ids = [op.id for g in service.dead_letters(session, target)["groups"] for op in g["operations"]]
    else:
        ids = await form_ids(request)
    if not ids:
        return RedirectResponse("/console/dead-letters?error=" + quote("tick at least one operation"), 303)
    replayed, refused = [], []
    for op_id in ids:
        try:
            replayed += queue_service.replay(session, op_id, ctx=request.app.state.planning).op_ids
        except queue_service.ReplayError as exc:
            refused.append(str(exc))
    service.record(session, user, "dead_letters.replay", target or None, op_ids=replayed, refused=refused)
    wake_after_commit(request, session)
    message = f"replayed {len(replayed)} operation(s)" + (f"; refused: {'; '.join(refused)}" if refused else "")
    return RedirectResponse("/console/dead-letters?done=" + quote(message), 303)


@router.get("/people", response_class=HTMLResponse)
def search(request: Request, user: Viewer, session: SessionDep,
           q: Annotated[str, Query(max_length=200)] = "",
           show: Literal["unverified-leavers", "rejected-events"] | None = None) -> HTMLResponse:
    """Search people; or the lists behind the overview's numbers (unverified leavers, rejected HR events)."""
    if show == "unverified-leavers":
        return page(request, "people.html", user, q="", people=people.unverified_leavers(session, utcnow()),
                    listing="Leavers whose revocation is not yet verified")
    if show == "rejected-events":
        return page(request, "rejected_events.html", user, events=people.rejected_events(session))
    found = people.search(session, q.strip()) if q.strip() else []
    return page(request, "people.html", user, q=q, people=found)


@router.get("/people/{employee_id}", response_class=HTMLResponse)
async def person(request: Request, employee_id: str, user: Viewer) -> HTMLResponse:
    state = request.app.state
    planning = getattr(state, "planning", None)
    with state.db.transaction() as session:
        found = people.person(session, employee_id, utcnow(), planning.policies if planning is not None else None)
    if found is None:
        return page(request, "forbidden.html", user, status_code=404, message=f"no person with employee id {employee_id}")
    plan: list | str
    if getattr(state, "planning", None) is None:
        plan = "this process does not plan: the plan diff shows on a 'provisioner serve' process"
    else:
        try:
            plan = await run_in_threadpool(preview, state.db, state.planning, employee_id)
        except UnknownEmployee as exc:
            plan = str(exc)
    return page(request, "person.html", user, p=found, plan=plan)
