"""The HTTP API: HR intake, evidence for auditors, access-diff previews, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy.orm import Session

from provisioner import __version__
from provisioner.api import openapi, problems
from provisioner.db import Database
from provisioner.intake.writer import IntakeWriter
from provisioner.queue import repository as queue
from provisioner.scim.app import mount_scim
from provisioner.settings import Settings

# Alert on provisioner_queue_operations{status="dead"} > 0: dead letters need a person.
QUEUE_DEPTH = Gauge("provisioner_queue_operations", "Operations in the queue by status", ["status"])


def create_app(settings: Settings, db: Database, *,
               on_events_accepted: Callable[[], None] | None = None,
               on_identity_changed: Callable[[Session, str, str], None] | None = None) -> FastAPI:
    from provisioner.evidence.endpoints import router as evidence_router
    from provisioner.intake.endpoints import router as intake_router
    from provisioner.planner.endpoints import router as plans_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.intake_writer.aclose()

    app = FastAPI(title="provisioner", version=__version__, lifespan=lifespan,
                  description="Identity lifecycle provisioning for Microsoft Entra ID and SCIM apps")
    app.state.settings = settings
    app.state.db = db
    app.state.intake_writer = IntakeWriter(db, max_events=settings.max_batch_events)
    app.state.hr_secrets = settings.source_secrets()
    app.state.on_events_accepted = on_events_accepted
    if on_identity_changed is not None:
        app.state.on_identity_changed = on_identity_changed
    problems.install(app)
    app.include_router(intake_router)
    app.include_router(evidence_router)
    app.include_router(plans_router)
    mount_scim(app)
    openapi.install(app)  # the contract: security, bodies, problem answers, /scim/v2 (api/openapi.py)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        with db.transaction() as session:
            counts = queue.counts(session)
        for status in ("pending", "waiting", "running", "succeeded", "dead", "cancelled"):
            QUEUE_DEPTH.labels(status).set(counts.get(status, 0))
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return app
