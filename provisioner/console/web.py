"""What every console page shares: the templates, the signed-in person, the CSRF check on forms."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from provisioner.console.session import ConsoleUser, csrf_ok, current_user
from provisioner.db import after_commit

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


class SignInNeeded(Exception):
    """A page asked for without a session: the handler redirects to the sign-in page."""


class ConsoleForbidden(Exception):
    """A POST without its CSRF token, or a decision by someone who only reads: 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def signed_in(request: Request) -> ConsoleUser:
    user = current_user(request)
    if user is None:
        raise SignInNeeded()
    return user


async def _form_user(request: Request) -> ConsoleUser:
    user = current_user(request)
    if user is None:
        raise ConsoleForbidden("not signed in: sign in again")
    form = await request.form()
    token = form.get("csrf_token")
    if not csrf_ok(user, token if isinstance(token, str) else None):
        raise ConsoleForbidden("the form's CSRF token is missing or wrong: reload the page and try again")
    return user


async def poster(request: Request) -> ConsoleUser:
    """A POST by any signed-in person, its CSRF token checked (sign-out)."""
    return await _form_user(request)


async def decider(request: Request) -> ConsoleUser:
    """A POST by an approver or admin, its CSRF token checked; 403 for viewers and auditors."""
    user = await _form_user(request)
    if not user.can_decide:
        raise ConsoleForbidden(f"{user.name} may read but not decide: approvers and admins decide")
    return user


Viewer = Annotated[ConsoleUser, Depends(signed_in)]
Poster = Annotated[ConsoleUser, Depends(poster)]
Decider = Annotated[ConsoleUser, Depends(decider)]


def page(request: Request, template: str, user: ConsoleUser | None, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"user": user, **context}, status_code=status_code)


async def form_ids(request: Request, name: str = "ids") -> list[int]:
    form = await request.form()
    out = []
    for value in form.getlist(name):
        if isinstance(value, str) and value.isdigit():
            out.append(int(value))
    return out


def wake_after_commit(request: Request, session: Session) -> None:
    """Wake this process's worker once the console's decision has committed (woken before, it
    could find nothing to claim yet); without a worker here, the HR-event loop's wake."""
    for name in ("wake_worker", "on_events_accepted"):
        wake = getattr(request.app.state, name, None)
        if wake is not None:
            after_commit(session, wake)
            return
