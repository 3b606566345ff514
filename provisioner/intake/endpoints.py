"""``POST /hr/events``: signed HR events, one or a batch. Thin: verify, parse, accept, commit.

``GET /hr/events/{event_id}`` and ``GET /hr/events``: a source reads back what became of its
own events, signed like a POST with ``"GET <path>[?<query>]"`` as the body (see ``fate.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from provisioner.api.problems import Problem, problem_response, validation_problem
from provisioner.api.responses import HR_SIGNED, contract, problems
from provisioner.clock import utcnow
from provisioner.intake import fate, repository, service, signing, validation
from provisioner.intake.models import EventStatus
from provisioner.intake.schemas import BatchReceipt, EffectiveWindow, EventBatchIn, HREventIn, Receipt
from provisioner.intake.writer import StoreError
from provisioner.settings import Settings

router = APIRouter(tags=["hr"])
STATUSES = sorted(v for k, v in vars(EventStatus).items() if k.isupper())


def check_status(status: str | None) -> None:
    """The ``status`` filter of an events listing: 400 naming ``query.status`` unless a known one."""
    if status is not None and status not in STATUSES:
        message = f"one of {', '.join(STATUSES)}, not {status!r}"
        raise Problem(400, "Invalid request", f"query.status: {message}", type_="urn:provisioner:problem:validation",
                      errors=[{"field": "query.status", "message": message}])


def _verified_source(request: Request, signed: bytes) -> str:
    """The HR source whose secret signed ``signed`` (the body, or a GET's request target)."""
    settings: Settings = request.app.state.settings
    try:
        return signing.verify(
            request.app.state.hr_secrets, request.headers.get(signing.SOURCE_HEADER),
            request.headers.get(signing.TIMESTAMP_HEADER), request.headers.get(signing.SIGNATURE_HEADER),
            signed, now=time.time(), tolerance=settings.signature_tolerance_seconds)
    except signing.SignatureError as exc:
        raise Problem(401, "Signature rejected", str(exc), type_="urn:provisioner:problem:signature") from exc


def read_source(request: Request) -> str:
    """Dependency for signed reads: the message is ``"GET <path as sent>[?<query as sent>]"``."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    target = raw.split(b"?")[0].decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return _verified_source(request, fate.read_message(request.method, target + (f"?{query}" if query else "")))


SourceDep = Annotated[str, Depends(read_source)]


def require_json(request: Request, hint: str = "") -> None:
    """415 for a body that does not say it is JSON (checked before the signature)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, "Unsupported media type",
                      f"Content-Type: send application/json{hint}, not {media or 'nothing'!r}",
                      type_="urn:provisioner:problem:media-type")


async def store(request: Request, events: list[HREventIn], source: str,
                conflict: Callable[[service.ConflictError], str] = str) -> list[Receipt]:
    """Every way in ends here: the events committed (in a group with concurrent requests) before
    the 202 is sent, then the event loop woken. A known event id with another body is 409 (its
    detail by ``conflict``, naming the request's own field); a store refusal keeps its status."""
    try:
        receipts = await request.app.state.intake_writer.submit(events, source)
    except service.ConflictError as exc:
        raise Problem(409, "Conflict", conflict(exc), type_="urn:provisioner:problem:conflict",
                      event_id=exc.event_id) from exc
    except StoreError as exc:
        raise Problem(exc.status, "Not stored", str(exc), type_="urn:provisioner:problem:not-stored") from exc
    wake = getattr(request.app.state, "on_events_accepted", None)
    if wake is not None:
        wake()
    return receipts


def _invalid(exc: validation.Invalid, instance: str) -> JSONResponse:
    if exc.too_large:
        return problem_response(413, "Batch too large", str(exc), type_="urn:provisioner:problem:too-large",
                                instance=instance)
    return validation_problem([{"loc": (e.field,), "msg": e.message} for e in exc.errors], instance,
                              total=exc.total)


@router.post("/hr/events", status_code=202, responses={
    202: {"description": "Accepted and durably stored (or the same event again: `Idempotent-Replay: true`)",
          "model": Receipt | BatchReceipt},
    **problems(400, 401, 409, 413, 415, s401="Missing, stale or bad signature",
               s409="A known event_id with a different body")},
    openapi_extra=contract(security=HR_SIGNED, body=(HREventIn, EventBatchIn),
                           body_description="One event, or a batch `{\"events\": [...]}`; signed over the raw body"))
async def post_events(request: Request) -> Any:
    settings: Settings = request.app.state.settings
    require_json(request)
    body = await request.body()  # its size is limited while it streams (provisioner/api/body_limit.py)
    source = _verified_source(request, body)
    window = EffectiveWindow(utcnow(), settings.hr_effective_past_days, settings.hr_effective_future_days)
    try:
        events, is_batch = validation.parse_request(body, window=window, max_events=settings.max_batch_events)
    except validation.Invalid as exc:
        return _invalid(exc, request.url.path)
    receipts = await store(request, events, source)
    if not is_batch:
        receipt = receipts[0]
        headers = {"Idempotent-Replay": "true"} if receipt.duplicate else None
        return JSONResponse(receipt.model_dump(mode="json"), status_code=202, headers=headers)
    dup = sum(r.duplicate for r in receipts)
    return JSONResponse(BatchReceipt(accepted=len(receipts) - dup, duplicates=dup,
                                     receipts=receipts).model_dump(mode="json"), status_code=202)


@router.get("/hr/events", responses=problems(400, 401, s401="Missing, stale or bad signature"),
            openapi_extra=contract(security=HR_SIGNED))
def list_events(request: Request, source: SourceDep,
                status: Annotated[str | None, Query(description="only events with this status")] = None,
                since: Annotated[AwareDatetime | None, Query(
                    description="received or settled at or after this time (RFC 3339 with offset)")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                after: Annotated[int | None, Query(ge=0, description="the `next` cursor of the previous page")] = None,
                ) -> dict[str, Any]:
    """The calling source's events, oldest first, a page at a time (``next`` is the next page's
    path, to be signed like this one, or null)."""
    check_status(status)
    with request.app.state.db.read() as session:
        return fate.page(session, request.url.path, source=source, status=status, since=since,
                         after=after, limit=limit)


@router.get("/hr/events/{event_id:path}", responses={
    200: {"description": "The event and what became of it"},
    **problems(401, 404, s401="Missing, stale or bad signature", s404="No such event from this source")},
    openapi_extra=contract(security=HR_SIGNED))
def get_event(request: Request, event_id: str, source: SourceDep) -> dict[str, Any]:
    """One of the calling source's events: status (pending, applied, rejected, superseded,
    cancelled, done) and the reason. Another source's event is 404, as an unknown one is."""
    with request.app.state.db.read() as session:
        event = repository.get(session, event_id)
        if event is None or event.source != source:
            raise Problem(404, "Not found", f"event_id: no event {event_id!r} from source {source!r}",
                          type_="urn:provisioner:problem:not-found", event_id=event_id)
        return fate.views(session, [event])[0]
