"""``GET /evidence/revocations``: auditor access only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from provisioner.api.auth import scope_dependency
from provisioner.api.deps import SessionDep
from provisioner.evidence import service

router = APIRouter(tags=["evidence"])


@router.get("/evidence/revocations", dependencies=[Depends(scope_dependency("auditor"))])
def revocations(session: SessionDep,
                from_: Annotated[datetime, Query(alias="from", description="RFC 3339 or date")],
                to: Annotated[datetime, Query(description="RFC 3339 or date (exclusive)")],
                format: Literal["json", "csv"] = "json") -> Response:
    start = from_ if from_.tzinfo else from_.replace(tzinfo=UTC)
    end = to if to.tzinfo else to.replace(tzinfo=UTC)
    records = service.revocations(session, start, end)
    body = (service.to_csv(records) if format == "csv" else service.to_json(records)).encode()
    meta = service.manifest(body, filename=f"revocations.{format}", start=start, end=end,
                            count=len(records), fmt=format)
    headers = {"X-Evidence-SHA256": meta["sha256"]}
    if format == "csv":
        return Response(body, media_type="text/csv", headers=headers)
    return JSONResponse({"manifest": meta, "records": records}, headers=headers)
