"""The IT console at /console: server-rendered pages over the services the HTTP API uses."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from provisioner.console import session
from provisioner.console.web import HERE, ConsoleForbidden, SignInNeeded, page
from provisioner.settings import Settings

PREFIX = "/console"


def routers() -> tuple[APIRouter, ...]:
    """The console's routers, mounted under PREFIX (the accessibility test visits each GET page)."""
    from provisioner.console.change_endpoints import router as change_router
    from provisioner.console.endpoints import router
    from provisioner.console.entra_endpoints import router as entra_router
    from provisioner.console.ops_endpoints import router as ops_router
    from provisioner.console.reconcile_endpoints import router as reconcile_router
    from provisioner.console.records_endpoints import router as records_router

    return (router, entra_router, change_router, ops_router, records_router, reconcile_router)


def mount_console(app: FastAPI, settings: Settings) -> None:
    session.configure(settings)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    for r in routers():
        app.include_router(r, prefix=PREFIX, include_in_schema=False)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)

    @app.exception_handler(ConsoleForbidden)
    async def _forbidden(request: Request, exc: ConsoleForbidden):
        return page(request, "forbidden.html", session.current_user(request), status_code=403, message=exc.message)
