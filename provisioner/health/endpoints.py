"""``GET /readyz`` (readiness, open to probes) and ``GET /metrics`` (a bearer token: the metrics
token or an admin API token, unless ``PROVISIONER_METRICS_PUBLIC`` opens it)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from provisioner.api.auth import require_scope
from provisioner.api.problems import Problem
from provisioner.api.responses import METRICS, contract, problems
from provisioner.clock import utcnow
from provisioner.health import metrics, service

router = APIRouter(tags=["ops"])
UNAUTHORIZED = "send Authorization: Bearer <metrics token or admin token>"


def metrics_access(request: Request) -> None:
    settings = request.app.state.settings
    if settings.metrics_public:
        return
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return
    try:
        require_scope(request, "admin")
    except Problem as exc:
        if exc.status == 403:
            raise
        # One answer for no token, an unknown one and a revoked one: it tells nothing.
        raise Problem(401, "Unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}) from None


def _snapshot(request: Request, *, by_status: bool = False) -> service.Snapshot:
    with request.app.state.db.transaction() as session:
        return service.snapshot(session, getattr(request.app.state, "target_halts", None), by_status=by_status)


@router.get("/readyz", responses={503: {
    "description": "Not ready: a target is halted or a threshold is exceeded (the same report as the 200)",
    "content": {"application/json": {"schema": {"type": "object"}}}}})
def readyz(request: Request) -> JSONResponse:
    ready, body = service.readiness(_snapshot(request), request.app.state.settings)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", dependencies=[Depends(metrics_access)], response_class=Response,
            responses={200: {"description": "Prometheus text exposition",
                             "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
                       **problems(401, 403, s401="No, unknown or revoked bearer token",
                                  s403="An API token without the admin scope")},
            openapi_extra=contract(security=METRICS))
def prometheus(request: Request) -> Response:
    from provisioner.change_control import approvals_metrics
    from provisioner.change_control.holds.metrics import families as change_control

    snap = _snapshot(request, by_status=True)
    with request.app.state.db.read() as session:  # approvals waiting, SoD conflicts, holds
        extra = [*change_control(session, utcnow()),
                 *approvals_metrics.families(session, getattr(request.app.state, "planning", None))]
    return Response(metrics.exposition(snap, extra), media_type=CONTENT_TYPE_LATEST)
