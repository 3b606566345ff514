"""Intake throughput of ``POST /hr/bulkUpload`` (``provisioner bench hr-bulk``).

The API is served by uvicorn in a subprocess on a free loopback port (``create_app``, as
``provisioner serve --no-workers`` serves it) over a scratch database (SQLite, or a scratch
database on the PostgreSQL server given), with one HR source declared with a ``bulk_upload``
section and its token. Clients post SCIM BulkRequests of 50 new joiners shaped like Microsoft's
documented example (core, enterprise and a custom extension, a manager), first one client at a
time, then ``concurrency`` clients at once; then the same joiners as native ``POST /hr/events``
batches of 50 (HMAC-signed), the baseline of what the intake itself takes. Every answer must be
202 and every record stored. It prints records/s and requests/s against Entra ID's documented limit for API-driven inbound
provisioning: 40 requests/s x 50 records = 2,000 records/s (newer pages: 40 requests per 5 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from provisioner.bench.scim_setup import running_process, scratch_database
from provisioner.db import Database
from provisioner.intake.models import HREvent
from provisioner.intake.signing import signed_headers
from provisioner.sandbox.ports import free_port
from provisioner.tokens.service import create_token, hr_source_scope

SOURCE = "bench-inbound"
NATIVE_SOURCE = "bench-native"  # the baseline: the same joiners as signed native batches
BATCH = 50
ENTRA_RECORDS_PER_SECOND = 40 * BATCH  # 40 requests/s x 50 operations (Entra's documented limit)
ENTRA_5S_RECORDS_PER_SECOND = 40 * BATCH / 5  # the newer pages: 40 requests per 5-second window
_DB_ENV = "PROVISIONER_DATABASE_URL"
_SOURCES_ENV = "PROVISIONER_HR_SOURCES_DIR"
_CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_CUSTOM = "urn:contoso:employee"


def bench_app() -> Any:
    """The uvicorn factory run in the server subprocess: the service's API, no workers."""
    from provisioner.api.app import create_app
    from provisioner.settings import Settings

    settings = Settings()
    return create_app(settings, Database(settings.database_url))


def record(n: int, run: str) -> dict[str, Any]:
    """Joiner ``n`` as Microsoft's example has it, reporting to the first of their batch."""
    emp = f"{run}-{n:07d}"
    manager = f"{run}-{n - n % BATCH:07d}"
    enterprise: dict[str, Any] = {"employeeNumber": emp, "costCenter": "4130", "organization": "Contoso",
                                  "division": "Theme Park", "department": "Tour Operations"}
    if manager != emp:
        enterprise["manager"] = {"value": manager}
    return {"schemas": [_CORE, _ENTERPRISE, _CUSTOM], "externalId": emp, "userName": f"{emp}@contoso.com",
            "name": {"formatted": f"Barbara Jensen {n}", "familyName": f"Jensen{n}", "givenName": "Barbara"},
            "displayName": f"Babs Jensen {n}", "nickName": "Babs",
            "emails": [{"value": f"{emp}@contoso.com", "type": "work", "primary": True}],
            "addresses": [{"type": "work", "locality": "Redmond", "region": "WA", "country": "USA", "primary": True}],
            "userType": "Employee", "title": "Tour Guide", "active": True, _ENTERPRISE: enterprise,
            _CUSTOM: {"HireDate": "2026-01-05", "JobCode": "TG2", "Badge": f"B-{n}"}}


def native_bodies(count: int, run: str) -> list[bytes]:
    """The same joiners as native ``POST /hr/events`` batches of 50 (the baseline)."""
    out = []
    now = datetime.now(UTC).isoformat()
    for start in range(0, count, BATCH):
        events = []
        for n in range(start, min(count, start + BATCH)):
            emp, manager = f"{run}-{n:07d}", f"{run}-{n - n % BATCH:07d}"
            attributes = {"given_name": "Barbara", "family_name": f"Jensen{n}", "preferred_name": "Babs",
                          "title": "Tour Guide", "department": "Tour Operations", "cost_center": "4130",
                          "employment_type": "employee", "location": "Redmond", "job_code": "TG2",
                          "start_date": "2026-01-05", "extra": {"Badge": f"B-{n}"}}
            if manager != emp:
                attributes["manager_employee_id"] = manager
            events.append({"event_id": f"native-{emp}", "type": "hire", "employee_id": emp, "effective_at": now,
                           "attributes": attributes})
        out.append(json.dumps({"events": events}).encode())
    return out


def bodies(count: int, run: str) -> list[bytes]:
    out = []
    for start in range(0, count, BATCH):
        ops = [{"method": "POST", "bulkId": f"b{n}", "path": "/Users", "data": record(n, run)}
               for n in range(start, min(count, start + BATCH))]
        out.append(json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                               "Operations": ops, "failOnErrors": None}).encode())
    return out


@dataclass
class Result:
    label: str
    clients: int
    records: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


async def _post_all(url: str, token: str, payloads: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Post every payload, ``clients`` at a time; ``token`` is a bearer token, or for
    ``/hr/events`` the native source's HMAC secret."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in payloads:
        queue.put_nowait(body)
    latencies: list[float] = []
    native = url.endswith("/hr/events")

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60.0) as http:
            while not queue.empty():
                body = queue.get_nowait()
                headers = (signed_headers(NATIVE_SOURCE, token, body) if native else
                           {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
                started = time.perf_counter()
                resp = await http.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if resp.status_code != 202:
                    raise RuntimeError(f"POST {url} answered {resp.status_code}: {resp.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, sorted(latencies)


def _measure(label: str, url: str, token: str, records: int, clients: int, run: str) -> Result:
    payloads = native_bodies(records, run) if url.endswith("/hr/events") else bodies(records, run)
    seconds, latencies = asyncio.run(_post_all(url, token, payloads, clients))
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return Result(label, clients, records, len(payloads), seconds, pick(0.5), pick(0.99))


@contextmanager
def _sources_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hr-bulk-bench-"))
    try:
        (folder / f"{SOURCE}.yaml").write_text("description: benchmark source\nbulk_upload: {}\n")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def serve_api(database_url: str, sources: Path, secret: str) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, **{_DB_ENV: database_url, _SOURCES_ENV: str(sources),
                              "PROVISIONER_HR_SECRETS": json.dumps({NATIVE_SOURCE: secret})})
    command = [sys.executable, "-m", "uvicorn", "provisioner.bench.hr_bulk:bench_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
               "--loop", "uvloop", "--http", "httptools"]
    base = f"http://127.0.0.1:{port}"
    with running_process(command, env, f"{base}/healthz"):
        yield base


def run(*, records: int, concurrency: int, database_url: str | None, console: Console) -> list[Result]:
    """One engine: single client, then ``concurrency`` clients; returns the results it printed."""
    results: list[Result] = []
    with scratch_database(database_url) as url, _sources_dir() as sources:
        db = Database(url)
        try:
            with db.transaction() as session:
                token = create_token(session, "bench-hr-bulk", {hr_source_scope(SOURCE)})
            secret = secrets.token_hex(16)
            with serve_api(url, sources, secret) as base:
                endpoint = f"{base}/hr/bulkUpload"
                _measure("warm-up", endpoint, token, BATCH * 4, 1, "W")
                results.append(_measure("/hr/bulkUpload", endpoint, token, records, 1, "S"))
                results.append(_measure("/hr/bulkUpload", endpoint, token, records, concurrency, "C"))
                native = f"{base}/hr/events"
                results.append(_measure("/hr/events (native, baseline)", native, secret, records, 1, "NS"))
                results.append(_measure("/hr/events (native, baseline)", native, secret, records, concurrency, "NC"))
            with db.read() as session:
                stored = session.scalar(select(func.count()).select_from(HREvent))
            expected = BATCH * 4 + 4 * records
            if stored != expected:
                raise RuntimeError(f"{stored} events stored, {expected} expected")
        finally:
            db.dispose()
    engine = "SQLite" if database_url is None else "PostgreSQL"
    _print(console, engine, results)
    return results


def _print(console: Console, engine: str, results: list[Result]) -> None:
    table = Table(title=f"POST /hr/bulkUpload intake on {engine} (requests of {BATCH} records, every record "
                        "stored before the 202)")
    table.add_column("endpoint")
    for column in ("clients", "records", "requests", "seconds", "records/s", "requests/s", "p50 ms", "p99 ms",
                   "x Entra 2,000 rec/s", "x Entra 400 rec/s (40 per 5 s)"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r.label, str(r.clients), str(r.records), str(r.requests), f"{r.seconds:.2f}",
                      f"{r.records_per_second:,.0f}", f"{r.requests_per_second:,.1f}", f"{r.p50_ms:.1f}",
                      f"{r.p99_ms:.1f}", f"{r.records_per_second / ENTRA_RECORDS_PER_SECOND:.2f}",
                      f"{r.records_per_second / ENTRA_5S_RECORDS_PER_SECOND:.2f}")
    console.print(table)
