"""The HTTP API: HR intake, evidence for auditors, access-diff previews, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session

from provisioner import __version__
from provisioner.api import openapi, problems
from provisioner.api.body_limit import BodyLimit, BodyLimitMiddleware
from provisioner.console import mount_console
from provisioner.db import Database
from provisioner.health.service import HaltsProvider
from provisioner.hr_sources.declarations import HrSource, load_sources
from provisioner.intake.writer import IntakeWriter
from provisioner.scim.app import mount_scim
from provisioner.scim.config import SCIM_PREFIX
from provisioner.settings import Settings


def create_app(settings: Settings, db: Database, *,
               on_events_accepted: Callable[[], None] | None = None,
               on_identity_changed: Callable[[Session, str, str], None] | None = None,
               target_halts: HaltsProvider | None = None,
               hr_sources: Mapping[str, HrSource] | None = None) -> FastAPI:
    from provisioner.change_control.approvals_endpoints import router as change_control_router
    from provisioner.change_control.holds.endpoints import router as holds_router
    from provisioner.change_control.rollouts.endpoints import router as rollouts_router
    from provisioner.evidence.endpoints import router as evidence_router
    from provisioner.health.endpoints import router as health_router
    from provisioner.hr_sources.bulk.endpoints import router as hr_bulk_router
    from provisioner.hr_sources.webhooks.endpoints import router as hr_webhooks_router
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
    # hr_sources/*.yaml, as the runtime loaded them (ConfigError: file:line)
    app.state.hr_sources = dict(hr_sources) if hr_sources is not None else load_sources(settings.hr_sources_dir)
    app.state.on_events_accepted = on_events_accepted
    if on_identity_changed is not None:
        app.state.on_identity_changed = on_identity_changed
    app.state.target_halts = target_halts  # readiness: the workers of this process, if any
    problems.install(app)
    app.include_router(intake_router)
    app.include_router(hr_webhooks_router)  # POST /hr/webhooks/{source} (provisioner/hr_sources/webhooks)
    app.include_router(hr_bulk_router)  # POST /hr/bulkUpload: SCIM bulk uploads of HR sources (hr_sources/bulk)
    app.include_router(evidence_router)
    app.include_router(plans_router)
    app.include_router(change_control_router)  # approvals, separation of duties (change_control)
    app.include_router(holds_router)  # change control: held mass changes, reviewed policy rollouts
    app.include_router(rollouts_router)
    app.include_router(health_router)  # /readyz, /metrics (alert rules: deploy/prometheus/alerts.yml)
    mount_scim(app)
    mount_console(app, settings)  # the IT console: server-rendered pages at /console (provisioner/console)
    openapi.install(app)  # the contract: security, bodies, problem answers, /scim/v2 (api/openapi.py)
    # Added last, so outermost: bodies are limited before a signature or token is checked.
    app.add_middleware(BodyLimitMiddleware, limits=[
        BodyLimit("/hr/events", settings.hr_max_body_bytes),
        BodyLimit("/hr/webhooks", settings.hr_max_body_bytes),
        BodyLimit("/hr/bulkUpload", settings.hr_max_body_bytes),
        BodyLimit(SCIM_PREFIX, settings.scim_max_body_bytes, scim=True)])

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness only: the process answers. Whether the flow moves is /readyz."""
        return {"status": "ok", "version": __version__}

    return app
