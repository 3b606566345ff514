"""``POST /hr/events``: signed HR events, one or a batch. Thin: verify, parse, accept, commit."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from provisioner.api.problems import Problem, problem_response, validation_problem
from provisioner.intake import service, signing
from provisioner.intake.schemas import BatchReceipt, EventBatchIn, HREventIn
from provisioner.settings import Settings

router = APIRouter(tags=["hr"])
_single = TypeAdapter(HREventIn)
_batch = TypeAdapter(EventBatchIn)


@router.post("/hr/events", status_code=202, responses={
    202: {"description": "Accepted and durably stored (or the same event again)"},
    400: {"description": "Malformed event (problem+json naming the field)"},
    401: {"description": "Missing, stale or bad signature"},
    409: {"description": "A known event_id with a different body"}})
async def post_events(request: Request) -> Any:
    settings: Settings = request.app.state.settings
    body = await request.body()
    try:
        source = signing.verify(
            request.app.state.hr_secrets, request.headers.get(signing.SOURCE_HEADER),
            request.headers.get(signing.TIMESTAMP_HEADER), request.headers.get(signing.SIGNATURE_HEADER),
            body, now=time.time(), tolerance=settings.signature_tolerance_seconds)
    except signing.SignatureError as exc:
        return problem_response(401, "Signature rejected", str(exc), instance=request.url.path,
                                type_="urn:provisioner:problem:signature")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Problem(400, "Invalid request", f"body: not valid JSON ({exc})") from exc
    is_batch = isinstance(data, dict) and "events" in data
    try:
        events = _batch.validate_python(data).events if is_batch else [_single.validate_python(data)]
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return validation_problem([{**e, "loc": tuple(e["loc"])} for e in errors], request.url.path)
    if len(events) > settings.max_batch_events:
        raise Problem(413, "Batch too large", f"events: at most {settings.max_batch_events} per request")
    try:  # committed (in a group with concurrent requests) before the 202 is sent
        receipts = await request.app.state.intake_writer.submit(events, source)
    except service.ConflictError as exc:
        raise Problem(409, "Conflict", str(exc), type_="urn:provisioner:problem:conflict",
                      event_id=exc.event_id) from exc
    wake = getattr(request.app.state, "on_events_accepted", None)
    if wake is not None:
        wake()
    if not is_batch:
        receipt = receipts[0]
        headers = {"Idempotent-Replay": "true"} if receipt.duplicate else None
        return JSONResponse(receipt.model_dump(mode="json"), status_code=202, headers=headers)
    dup = sum(r.duplicate for r in receipts)
    return JSONResponse(BatchReceipt(accepted=len(receipts) - dup, duplicates=dup,
                                     receipts=receipts).model_dump(mode="json"), status_code=202)
