"""``POST /hr/webhooks/{source}``: an HR system's own webhook payload, verified as that system
signs it, mapped by the source file's jmespath expressions, and stored through the same intake
as ``POST /hr/events`` (group commit, idempotent on event_id, all or nothing). Thin: verify,
map, submit."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from provisioner.api.problems import Problem, problem_response, validation_problem
from provisioner.api.responses import HR_WEBHOOK, contract, problems
from provisioner.clock import utcnow
from provisioner.hr_sources.declarations import HrSource
from provisioner.hr_sources.webhooks import mapping, signatures
from provisioner.hr_sources.webhooks.schemas import IgnoredRecord, WebhookReceipt
from provisioner.intake import validation
from provisioner.intake.endpoints import require_json, store
from provisioner.intake.schemas import EffectiveWindow
from provisioner.settings import Settings

router = APIRouter(tags=["hr"])
log = logging.getLogger("provisioner.hr_sources")


def _rejected(detail: str) -> Problem:
    return Problem(401, "Signature rejected", detail, type_="urn:provisioner:problem:signature")


def _webhook_source(request: Request, name: str) -> HrSource:
    """The source declaring a webhook under this name; an unknown name gets the answer a bad
    signature gets, so a 401 never tells which sources exist."""
    source = (getattr(request.app.state, "hr_sources", None) or {}).get(name)
    if source is None or source.webhook is None:
        raise _rejected("bad signature")
    return source


def _verify(request: Request, source: HrSource, body: bytes) -> None:
    settings: Settings = request.app.state.settings
    assert source.webhook is not None
    try:
        secret = signatures.read_secret(source.webhook.signature)
    except signatures.SecretUnavailable as exc:
        log.error("the webhook secret of HR source %s cannot be read: %s", source.name, exc,
                  extra={"source": source.name, "alert": "hr_webhook_secret_missing"})
        raise Problem(503, "Not configured", f"the webhook of source {source.name!r} has no readable secret "
                      "(run 'provisioner hr-sources check')", type_="urn:provisioner:problem:not-configured") from None
    try:
        signatures.verify(source.webhook.signature, secret, request.headers, body, now=time.time(),
                          tolerance=settings.signature_tolerance_seconds)
    except signatures.SignatureError as exc:
        raise _rejected(str(exc)) from exc


@router.post("/hr/webhooks/{source}", status_code=202, responses={
    202: {"description": "Every event the payload maps to is stored (`accepted`), or the payload maps to "
                         "nothing to store (`ignored`, with the reasons)", "model": WebhookReceipt},
    **problems(400, 401, 409, 413, 415, 503, s400="A mapped value is invalid (the field is named as "
               "`records[i].attributes.x`)", s401="Missing, stale or bad signature, or no such webhook source",
               s409="A known event_id with a different body", s503="The source's secret cannot be read")},
    openapi_extra=contract(security=HR_WEBHOOK, body_description="The HR system's own JSON payload, signed "
                           "as that system signs it; mapped by hr_sources/<source>.yaml"))
async def post_webhook(request: Request, source: str) -> Any:
    settings: Settings = request.app.state.settings
    require_json(request, " (the HR system's JSON encoding)")
    body = await request.body()  # size limited while it streams (provisioner/api/body_limit.py)
    declared = _webhook_source(request, source)
    _verify(request, declared, body)
    assert declared.webhook is not None
    window = EffectiveWindow(utcnow(), settings.hr_effective_past_days, settings.hr_effective_future_days)
    try:
        mapped = mapping.apply(declared.webhook, declared.name, validation.decode_json(body), window=window)
    except validation.Invalid as exc:
        if exc.too_large:
            return problem_response(413, "Payload too large", str(exc), type_="urn:provisioner:problem:too-large",
                                    instance=request.url.path)
        return validation_problem([{"loc": (e.field,), "msg": e.message} for e in exc.errors],
                                  request.url.path, total=exc.total)
    ignored = [IgnoredRecord(record=i.record, reason=i.reason) for i in mapped.ignored]
    if not mapped.events:
        log.info("HR webhook from %s ignored: %s", declared.name, "; ".join(i.reason for i in ignored) or "no records",
                 extra={"source": declared.name})
        if not ignored:
            ignored = [IgnoredRecord(record=0, reason="the payload holds no records")]
        return JSONResponse(WebhookReceipt(status="ignored", accepted=0, duplicates=0, receipts=[],
                                           ignored=ignored).model_dump(mode="json"), status_code=202)
    receipts = await store(request, mapped.events, declared.name, conflict=lambda exc: str(exc).replace(
        f"events[{exc.index}]", f"records[{mapped.records[exc.index]}]"))
    dup = sum(r.duplicate for r in receipts)
    return JSONResponse(WebhookReceipt(status="accepted", accepted=len(receipts) - dup, duplicates=dup,
                                       receipts=receipts, ignored=ignored).model_dump(mode="json"), status_code=202)
