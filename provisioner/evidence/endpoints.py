"""``GET /evidence/revocations``: auditor access only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from provisioner import limits
from provisioner.api.auth import scope_dependency
from provisioner.api.deps import SessionDep
from provisioner.api.problems import Problem
from provisioner.api.responses import AUDITOR, contract, problems
from provisioner.evidence import service
from provisioner.evidence.period import PeriodError, parse_period

router = APIRouter(tags=["evidence"])
_WHEN = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}


@router.get("/evidence/revocations", dependencies=[Depends(scope_dependency("auditor"))], responses={
    200: {"description": "The manifest and records (JSON), or the records as CSV (`format=csv`); the "
                         "body's SHA-256 in X-Evidence-SHA256",
          "content": {"application/json": {"schema": {"type": "object", "required": ["manifest", "records"]}},
                      "text/csv": {"schema": {"type": "string"}}}},
    **problems(400, 401, 403)}, openapi_extra=contract(security=AUDITOR))
def revocations(session: SessionDep,
                from_: Annotated[str, Query(alias="from", description="date (start of that day) or RFC 3339 "
                                            "time; UTC unless an offset is given", json_schema_extra=_WHEN)],
                to: Annotated[str, Query(description="date (includes that whole day) or RFC 3339 time "
                                         "(exclusive); UTC unless an offset is given", json_schema_extra=_WHEN)],
                format: Literal["json", "csv"] = "json",
                employee_id: Annotated[str | None, Query(max_length=limits.EMPLOYEE_ID, description=
                                                         "only this leaver")] = None,
                target: Annotated[str | None, Query(max_length=100, description=
                                                    "only this system (a target name), per leaver")] = None,
                ) -> Response:
    try:
        start, end = parse_period(from_, to)
    except PeriodError as exc:
        raise Problem(400, "Invalid request", str(exc), type_="urn:provisioner:problem:validation") from None
    records = service.revocations(session, start, end, employee_id=employee_id or None, target=target or None)
    body = (service.to_csv(records) if format == "csv" else service.to_json(records)).encode()
    meta = service.manifest(body, filename=f"revocations.{format}", start=start, end=end,
                            count=len(records), fmt=format, audit_head=service.audit_anchor(session),
                            employee_id=employee_id or None, target=target or None)
    headers = {"X-Evidence-SHA256": meta["sha256"]}
    if format == "csv":
        return Response(body, media_type="text/csv", headers=headers)
    return JSONResponse({"manifest": meta, "records": records}, headers=headers)
