"""Console pages for auditors: the audit trail (browse, filter, verify the chain) and the
revocation evidence (a period; the file as CSV or JSON, and its manifest), built by the services
the HTTP API's /evidence uses. Evidence is for auditors and admins."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from provisioner import limits
from provisioner.api.deps import SessionDep
from provisioner.audit import repository as audit_repository
from provisioner.audit.verify import verify_chain
from provisioner.console import service
from provisioner.console.session import ConsoleUser
from provisioner.console.web import ConsoleForbidden, Viewer, page
from provisioner.evidence import service as evidence
from provisioner.evidence.period import PeriodError, parse_period

router = APIRouter()
AUDITORS = {"auditor", "admin"}
Format = Literal["csv", "json"]


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(request: Request, user: Viewer, session: SessionDep,
                kind: Annotated[str, Query(max_length=50)] = "",
                subject: Annotated[str, Query(max_length=200)] = "",
                verify: bool = False) -> HTMLResponse:
    rows = audit_repository.recent(session, kind=kind.strip() or None, subject=subject.strip() or None, limit=200)
    report = verify_chain(session) if verify else None
    if verify:
        service.record(session, user, "audit.verified", None, ok=report.ok, records=report.records)
    return page(request, "audit.html", user, rows=[
        {"seq": r.seq, "at": r.at, "kind": r.kind, "subject": r.subject,
         "data": json.dumps(r.data, sort_keys=True, default=str)[:400]} for r in rows],
        kind=kind, subject=subject, report=report)


def _auditor(user: ConsoleUser) -> None:
    if not user.roles & AUDITORS:
        raise ConsoleForbidden(f"{user.name} is not an auditor: evidence is for auditors and admins")


EmployeeId = Annotated[str, Query(max_length=limits.EMPLOYEE_ID)]
Target = Annotated[str, Query(max_length=100)]


def _systems(request: Request) -> list[str]:
    planning = getattr(request.app.state, "planning", None)
    return sorted(planning.targets) if planning is not None else []


@router.get("/evidence", response_class=HTMLResponse)
def evidence_page(request: Request, user: Viewer, session: SessionDep,
                  from_: Annotated[str, Query(alias="from", max_length=40)] = "",
                  to: Annotated[str, Query(max_length=40)] = "",
                  employee_id: EmployeeId = "", target: Target = "") -> HTMLResponse:
    """The period's leavers and their systems (narrowed to a leaver or a system), with the
    download of the same as a file and its manifest."""
    _auditor(user)
    form = {"from_": from_, "to": to, "employee_id": employee_id, "target": target, "systems": _systems(request)}
    if not (from_ or to):
        return page(request, "evidence.html", user, **form)
    try:
        start, end = parse_period(from_, to)
    except PeriodError as exc:
        return page(request, "evidence.html", user, status_code=400, error=str(exc), **form)
    records = evidence.revocations(session, start, end, employee_id=employee_id or None, target=target or None)
    return page(request, "evidence.html", user, records=records, period=(start, end), **form)


def _export(session, start, end, fmt: str, employee_id: str | None, target: str | None) -> tuple[bytes, dict]:
    records = evidence.revocations(session, start, end, employee_id=employee_id, target=target)
    body = (evidence.to_csv(records) if fmt == "csv" else evidence.to_json(records)).encode()
    meta = evidence.manifest(body, filename=f"revocations.{fmt}", start=start, end=end, count=len(records),
                             fmt=fmt, audit_head=evidence.audit_anchor(session), employee_id=employee_id,
                             target=target)
    return body, meta


@router.get("/evidence/download")
def evidence_download(request: Request, user: Viewer, session: SessionDep,
                      from_: Annotated[str, Query(alias="from", max_length=40)],
                      to: Annotated[str, Query(max_length=40)], format: Format = "csv",
                      part: Literal["file", "manifest"] = "file", employee_id: EmployeeId = "",
                      target: Target = "") -> Response:
    """The evidence file (``part=file``) or its manifest (its SHA-256, the period, the number of
    leavers, the filters and the audit chain's head)."""
    _auditor(user)
    try:
        start, end = parse_period(from_, to)
    except PeriodError as exc:
        return page(request, "evidence.html", user, status_code=400, error=str(exc), from_=from_, to=to,
                    employee_id=employee_id, target=target, systems=_systems(request))
    body, meta = _export(session, start, end, format, employee_id or None, target or None)
    service.record(session, user, "evidence.downloaded", None, part=part, format=format, sha256=meta["sha256"],
                   leavers=meta["leavers"], period={"from": meta["from"], "to": meta["to"]},
                   filters=meta.get("filters"))
    stem = f"revocations-{start:%Y%m%d}-{end:%Y%m%d}"
    if part == "manifest":
        content, media, name = json.dumps(meta, indent=2).encode(), "application/json", f"{stem}.{format}.manifest.json"
    else:
        content, media, name = body, "text/csv" if format == "csv" else "application/json", f"{stem}.{format}"
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                        "X-Evidence-SHA256": meta["sha256"]})
