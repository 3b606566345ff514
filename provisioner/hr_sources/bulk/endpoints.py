"""``POST /hr/bulkUpload`` and the reads of its events' fates. Thin: authenticate, parse, check
all, store all (group commit), answer 202 with where each record's fate is read.

- ``POST /hr/bulkUpload``: a SCIM BulkRequest (``application/scim+json``) of up to 50 worker
  records, authenticated by the source's bearer token (scope ``hr:<source>``).
- ``GET /hr/sources/{name}/events/{event_id}``: one record's fate (``intake.fate``).
- ``GET /hr/sources/{name}/events``: the source's events, a page at a time.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from provisioner.api.problems import Problem
from provisioner.api.responses import HR_BULK, contract, problems
from provisioner.clock import utcnow
from provisioner.hr_sources.bulk import mapping, service
from provisioner.hr_sources.bulk.auth import bulk_source, own_source
from provisioner.hr_sources.bulk.schemas import (
    SCIM_JSON,
    HrBulkError,
    HrBulkRequest,
    HrBulkResponse,
    HrBulkResult,
)
from provisioner.hr_sources.declarations import HrSource
from provisioner.intake import fate, repository
from provisioner.intake.endpoints import check_status, store
from provisioner.intake.schemas import EffectiveWindow
from provisioner.settings import Settings

router = APIRouter(tags=["hr"])
MEDIA = (SCIM_JSON, "application/json")
_SCIM_ANSWER = {"content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/HrBulkResponse"}}}}


def _events_path(source: str) -> str:
    return f"/hr/sources/{quote(source, safe='')}/events"


def _scim(body: Any, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status,
                        media_type=SCIM_JSON, headers=headers)


def _refused(exc: service.Refused) -> JSONResponse:
    whole = [e for e in exc.errors if e.index is None]
    if whole or not exc.bulk_ids:
        first = (whole or exc.errors)[0]
        return _scim(HrBulkError(status=str(exc.status), scimType=first.scim_type,
                               detail="; ".join(e.detail for e in (whole or exc.errors))), exc.status)
    by_op: dict[int, list[service.OperationError]] = {}
    for error in exc.errors:
        by_op.setdefault(error.index or 0, []).append(error)
    bad = ", ".join(f"Operations[{i}]" for i in sorted(by_op))
    results = []
    for index, bulk_id in enumerate(exc.bulk_ids):
        errors = by_op.get(index)
        if errors:
            error = HrBulkError(status="400", scimType=errors[0].scim_type, detail="; ".join(e.detail for e in errors))
        else:
            error = HrBulkError(status="412", detail=f"not stored: {bad} refused, and a request is stored whole "
                                                   "or not at all")
        results.append(HrBulkResult(bulkId=bulk_id, status=error.status,
                                       response=error.model_dump(exclude_none=True)))
    return _scim(HrBulkResponse(Operations=results), 400)


def _authenticate_and_prepare(request: Request, body: bytes) -> tuple[HrSource, list[service.Prepared]]:
    """401/403 for the token, 415 for the media type, then every record as an event (or Refused)."""
    source = bulk_source(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA:
        raise Problem(415, "Unsupported media type",
                      f"Content-Type: send application/scim+json, not {media or 'nothing'!r}",
                      type_="urn:provisioner:problem:media-type")
    settings: Settings = request.app.state.settings
    assert source.bulk_upload is not None
    rules = service.Rules(source.name, mapping.effective(source.bulk_upload.attributes),
                          EffectiveWindow(utcnow(), settings.hr_effective_past_days, settings.hr_effective_future_days),
                          settings.contract_end_timezone)
    operations = service.read_request(body)
    with request.app.state.db.read() as session:
        return source, service.prepare(session, operations, rules)


@router.post("/hr/bulkUpload", status_code=202, responses={
    202: {"description": "Every record stored as an HR event (a repeat answers the same events); each "
                         "operation's `location` reads its fate", **_SCIM_ANSWER},
    400: {"description": "Refused, nothing stored: each bad operation's SCIM Error names the attribute (a "
                         "body that is no BulkRequest: one SCIM Error)",
          "content": {SCIM_JSON: {"schema": {"oneOf": [{"$ref": "#/components/schemas/HrBulkResponse"},
                                                       {"$ref": "#/components/schemas/HrBulkError"}]}}}},
    413: {"description": "More than 50 operations (SCIM Error, scimType tooMany), or a body over the limit",
          "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/HrBulkError"}}}},
    **problems(401, 403, 409, 415, s401="Missing, unknown or revoked token",
               s403="Not an HR source's token (scope hr:<source>), or the source declares no bulk_upload",
               s409="A record's event collided with a different one stored meanwhile: send the request again",
               s415="The body is not application/scim+json")},
    openapi_extra=contract(security=HR_BULK, body=(HrBulkRequest,), media=SCIM_JSON,
                           body_description="A SCIM BulkRequest as Entra's API-driven inbound provisioning "
                                            "sends it (at most 50 operations)", extra_models=(HrBulkError,
                                                                                              HrBulkResponse)))
async def bulk_upload(request: Request) -> Any:
    body = await request.body()  # its size is limited while it streams (provisioner/api/body_limit.py)
    try:  # the token, then every record: one hop off the event loop (both read the database)
        source, prepared = await run_in_threadpool(_authenticate_and_prepare, request, body)
    except service.Refused as exc:
        return _refused(exc)
    receipts = await store(request, [p.event for p in prepared], source.name,
                           conflict=lambda exc: f"{exc}: send the request again")
    events = _events_path(source.name)
    results = [HrBulkResult(bulkId=p.bulk_id, status="202", location=f"{events}/{quote(r.event_id, safe='')}",
                               response={"event_id": r.event_id, "type": p.event.type.value,
                                         "employee_id": p.event.employee_id, "duplicate": r.duplicate})
               for p, r in zip(prepared, receipts, strict=True)]
    return _scim(HrBulkResponse(Operations=results), 202, headers={"Location": events})


@router.get("/hr/sources/{name}/events", responses=problems(400, 401, 403, s401="Missing, unknown or revoked token",
                                                            s403="Not this source's token"),
            openapi_extra=contract(security=HR_BULK))
def list_events(request: Request, name: str,
                status: Annotated[str | None, Query(description="only events with this status")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                after: Annotated[int | None, Query(ge=0, description="the `next` cursor of the previous page")] = None,
                ) -> dict[str, Any]:
    """The source's events, oldest first, a page at a time (``next``: the next page's path, or null)."""
    own_source(request, name)
    check_status(status)
    with request.app.state.db.read() as session:
        return fate.page(session, _events_path(name), source=name, status=status, after=after, limit=limit)


@router.get("/hr/sources/{name}/events/{event_id:path}", responses={
    200: {"description": "The event and what became of it"},
    **problems(401, 403, 404, s401="Missing, unknown or revoked token", s403="Not this source's token",
               s404="No such event from this source")},
    openapi_extra=contract(security=HR_BULK))
def get_event(request: Request, name: str, event_id: str) -> dict[str, Any]:
    """One record's fate: status (pending, applied, rejected, superseded, cancelled, done, failed),
    the reason and any warnings, as ``GET /hr/events/{event_id}`` shows it."""
    own_source(request, name)
    with request.app.state.db.read() as session:
        event = repository.get(session, event_id)
        if event is None or event.source != name:
            raise Problem(404, "Not found", f"event_id: no event {event_id!r} from source {name!r}",
                          type_="urn:provisioner:problem:not-found", event_id=event_id)
        return fate.views(session, [event])[0]
