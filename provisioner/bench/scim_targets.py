"""``provisioner bench scim-targets``: joiners into a SCIM app (scim2-server), Bulk on and off.

N joiners, each granted G groups in one SCIM target (``app``, no Entra target: nothing waits on
another system), hired through the signed HTTP intake in batches and drained by the real worker
and connector against scim2-server in-process. Per run it prints the queue operations completed
per second and the HTTP requests made to the SCIM server against the minimum its advertised
limits (ServiceProviderConfig ``bulk.maxOperations``, ``bulk.maxPayloadSize``,
``filter.maxResults``) allow, and verifies in scim2-server that every account exists and holds
every membership.

Ratios, not absolute times, are what to compare across runs: this machine is noisy.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from provisioner.bench.common import temporary_postgres_database
from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.queue.models import Operation, OpStatus
from provisioner.targets.scim import writes
from provisioner.targets.scim.config import ScimTarget

TARGET = "app"
INTAKE_BATCH = 500  # events per signed POST /hr/events

MINIMUM_DEFINITION = """\
Minimum HTTP requests the server's advertised limits allow (ServiceProviderConfig: Bulk
maxOperations = O, maxPayloadSize = P bytes; filter.maxResults = R), for N joiners in G groups:
  writes, Bulk on:  phase 1 (creates) + phase 2 (memberships), each max(1, ceil(ops/O), ceil(bytes/P)).
                    Phase 1: N POST /Users operations, bytes = the create operations as sent.
                    Phase 2: G PATCH /Groups operations, one per group with all N members as one
                    `add` value list, bytes = those G operations as writes.py would encode them.
                    Memberships need the user ids the creates return, so 2 requests at least
                    (bulkId cross-references could fold them into 1; the queue settles each create first).
  writes, Bulk off: N POST /Users + G PATCH /Groups (one per group, all members in it).
  group creates:    G POST /Groups (the groups do not exist yet; create_missing_groups), both modes.
  reads:            1 GET /ServiceProviderConfig + 1 GET /Groups (the G names OR-ed in one filter)
                    + ceil(N / R) GET /Users match-before-create lookups (externalId and userName
                    terms OR-ed; at most R answers a page).
  Bytes are operations only (no envelope), so the Bulk minimum is a lower bound."""


@dataclass
class RunResult:
    mode: str
    database: str
    joiners: int
    groups: int
    batch_size: int
    ops_succeeded: int = 0
    ops_other: dict[str, int] = field(default_factory=dict)
    attempts: int = 0  # summed over the operations: more than ops_succeeded means retries
    intake_seconds: float = 0.0
    planning_seconds: float = 0.0  # the processor turning the hires into queue operations
    elapsed: float = 0.0  # first accepted event -> every operation succeeded
    verified_accounts: int = 0
    verified_memberships: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)  # request kind -> count
    seconds: Counter[str] = field(default_factory=Counter)  # request kind -> seconds in the server
    by_method: Counter[str] = field(default_factory=Counter)  # the connector's RecordingTransport
    recorded_calls: int = 0
    bulk_ops: Counter[str] = field(default_factory=Counter)  # method inside Bulk -> count
    create_bytes: int = 0  # POST /Users operations as sent (Bulk operation encoding)
    max_operations: int = 0
    max_payload: int = 0
    max_results: int = 0
    minimum: dict[str, int] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.ops_succeeded / self.elapsed if self.elapsed else float("nan")

    @property
    def worker_ops_per_second(self) -> float:
        worker = self.elapsed - self.intake_seconds - self.planning_seconds
        return self.ops_succeeded / worker if worker > 0 else float("nan")

    @property
    def writes(self) -> int:
        return sum(v for k, v in self.by_kind.items() if k in WRITE_KINDS)

    @property
    def reads(self) -> int:
        return sum(v for k, v in self.by_kind.items() if k in READ_KINDS)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


READ_KINDS = ("GET ServiceProviderConfig", "GET Groups (resolve)", "GET Users (match)", "GET other")
WRITE_KINDS = ("POST Bulk", "POST Users", "PATCH Groups", "other writes")
SETUP_KINDS = ("POST Groups (create)",)


def _kind(method: str, path: str) -> str:
    tail = path.split("/v2/", 1)[-1].strip("/")
    resource = tail.split("/", 1)[0]
    if method == "GET":
        return {"ServiceProviderConfig": "GET ServiceProviderConfig", "Groups": "GET Groups (resolve)",
                "Users": "GET Users (match)"}.get(resource, "GET other")
    if method == "POST" and resource == "Bulk":
        return "POST Bulk"
    if method == "POST" and resource == "Users":
        return "POST Users"
    if method == "POST" and resource == "Groups":
        return "POST Groups (create)"
    if method == "PATCH" and resource == "Groups":
        return "PATCH Groups"
    return "other writes"


class CountingTransport(httpx.AsyncBaseTransport):
    """Under the connector's RecordingTransport: sorts each request by what it is for and
    measures the create operations' bytes (as a Bulk operation would carry them)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.by_kind: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()  # request kind -> seconds waiting for the server
        self.bulk_ops: Counter[str] = Counter()
        self.create_sizes: dict[str, int] = {}  # externalId -> bytes (a create sent again counts once)

    @property
    def create_bytes(self) -> int:
        return sum(self.create_sizes.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method.upper()
        kind = _kind(method, request.url.path)
        self.by_kind[kind] += 1
        if kind in ("POST Bulk", "POST Users"):
            body = orjson.loads(await request.aread() or b"{}")
            items = body.get("Operations") or [] if kind == "POST Bulk" else [
                {"method": "POST", "path": "/Users", "bulkId": "0000000000", "data": body}]
            for item in items:
                resource = str(item.get("path", "")).strip("/").split("/", 1)[0]
                self.bulk_ops[f"{item.get('method')} {resource}"] += 1
                if item.get("method") == "POST" and resource == "Users":
                    data = item.get("data") or {}
                    self.create_sizes[str(data.get("externalId") or data.get("userName"))] = len(orjson.dumps(
                        {"method": "POST", "path": "/Users", "bulkId": "0000000000", "data": data})) + 1
        started = time.perf_counter()
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.seconds[kind] += time.perf_counter() - started

    async def aclose(self) -> None:
        await self.inner.aclose()


def group_names(groups: int) -> list[str]:
    return [f"App Group {n:02d}" for n in range(groups)]


def write_config(folder: Path, groups: int) -> tuple[Path, Path]:
    """A targets dir with only the SCIM target ``app`` and a birthright policy granting its groups."""
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    names = group_names(groups)
    (policies / "birthright.yaml").write_text(yaml.safe_dump({
        "name": "app-birthright", "birthright": True, "grants": {TARGET: {"groups": names}}}))
    (targets / f"{TARGET}.yaml").write_text(yaml.safe_dump({
        "kind": "scim", "name": TARGET, "base_url": "http://127.0.0.1:9/v2",  # the harness points it in-process
        "auth": {"method": "bearer", "token": {"env": "UNUSED"}},
        "managed_groups": [{"name": n} for n in names], "create_missing_groups": True}))
    return policies, targets


def _hire(n: int, run: str) -> dict[str, Any]:
    return {"event_id": f"{run}-hire-{n}", "type": "hire", "employee_id": f"{run}-{n:05d}",
            "effective_at": utcnow().isoformat(),
            "attributes": {"given_name": "Bench", "family_name": f"Joiner{n:05d}{run}", "department": "Bench"}}


async def _verify(svc: SandboxedService, run: str, joiners: int, names: list[str]) -> tuple[int, int]:
    """Accounts in scim2-server with this run's externalIds, and how many of the wanted
    memberships (every account in every group) it holds; raises if anything is missing."""
    server = svc.scim[TARGET]
    users = [u for u in await server.users() if str(u.get("externalId", "")).startswith(f"{run}-")]
    ids = {u["externalId"]: u["id"] for u in users}
    problems = []
    if len(users) != joiners or len(ids) != joiners:
        problems.append(f"{len(users)} accounts ({len(ids)} distinct externalIds) for {joiners} joiners")
    memberships = 0
    for name in names:
        members = await server.group_members(name)
        held = sum(1 for uid in ids.values() if uid in members)
        memberships += held
        if held != len(ids):
            problems.append(f"group {name!r} holds {held} of {len(ids)} accounts")
    if problems:
        raise AssertionError("scim2-server does not hold what was provisioned: " + "; ".join(problems))
    return len(users), memberships


def _op_counts(svc: SandboxedService) -> tuple[dict[str, int], int]:
    """Operations by status, and the attempts they took."""
    with svc.db.transaction() as session:
        rows = session.execute(select(Operation.status, func.count()).where(Operation.target == TARGET)
                               .group_by(Operation.status)).all()
        attempts = session.scalar(select(func.coalesce(func.sum(Operation.attempts), 0))
                                  .where(Operation.target == TARGET))
    return {str(status): int(n) for status, n in rows}, int(attempts or 0)


def _phase(ops: int, bytes_: int, max_ops: int, max_payload: int) -> int:
    return max(1, math.ceil(ops / max_ops), math.ceil(bytes_ / max_payload))


def minimum(result: RunResult, config: ScimTarget, *, bulk: bool, member_ids: list[str],
            group_ids: list[str]) -> dict[str, int]:
    """The minimum requests (see MINIMUM_DEFINITION), from the sizes actually involved."""
    n, g = result.joiners, result.groups
    create_bytes = patch_bytes = 0
    if bulk:
        fake = [(0, "add", uid) for uid in member_ids]
        patch_bytes = sum(len(orjson.dumps(writes.Call(
            "PATCH", f"Groups/{writes.seg(gid)}", writes.member_patch(config, fake), [0], "group")
            .bulk_operation("0000000000"))) + 1 for gid in group_ids)
        create_bytes = result.create_bytes
        writes_min = (_phase(n, create_bytes, result.max_operations, result.max_payload)
                      + _phase(g, patch_bytes, result.max_operations, result.max_payload))
    else:
        writes_min = n + g
    reads_min = 1 + 1 + math.ceil(n / max(1, result.max_results))
    return {"writes": writes_min, "setup": g, "reads": reads_min, "total": writes_min + g + reads_min,
            "create_bytes": create_bytes, "patch_bytes": patch_bytes}


async def run_once(*, joiners: int, groups: int, bulk: bool, database_url: str | None = None,
                   database: str = "sqlite", settings: dict[str, Any] | None = None,
                   max_wait: float = 900.0) -> RunResult:
    """Hire ``joiners`` people through the signed intake, drain, verify, count."""
    names = group_names(groups)
    with tempfile.TemporaryDirectory(prefix="bench-scim-targets-") as tmp:
        policies, targets = write_config(Path(tmp), groups)
        counters: dict[str, CountingTransport] = {}

        def wrap(name: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            counters[name] = CountingTransport(transport)
            return counters[name]

        svc = SandboxedService(Path(tmp) / "svc", database_url=database_url, policies_dir=policies,
                               targets_dir=targets, settings=settings or {},
                               scim_options={TARGET: {"bulk": bulk}}, wrap_transport=wrap)
        try:
            connector = svc.runtime.connectors[TARGET]
            result = RunResult(mode="Bulk" if bulk else "no Bulk", database=database, joiners=joiners,
                               groups=groups, batch_size=svc.settings.worker_batch_size)
            run = f"r{time.time_ns() % 10**8:08d}"
            t0: float | None = None
            for start in range(0, joiners, INTAKE_BATCH):
                reply = await svc.send([_hire(n, run) for n in range(start, min(joiners, start + INTAKE_BATCH))])
                if reply.status_code != 202:
                    raise AssertionError(f"intake answered {reply.status_code}: {reply.text[:300]}")
                t0 = t0 if t0 is not None else time.perf_counter()
            assert t0 is not None
            result.intake_seconds = time.perf_counter() - t0
            started = time.perf_counter()
            await svc.runtime.process_events()  # plan the hires (drain would do it first too)
            result.planning_seconds = time.perf_counter() - started
            await svc.drain(max_wait=max_wait)
            result.elapsed = time.perf_counter() - t0
            counts, result.attempts = _op_counts(svc)
            result.ops_succeeded = counts.pop(OpStatus.SUCCEEDED, 0)
            result.ops_other = counts
            if counts or result.ops_succeeded != joiners * (1 + groups):
                raise AssertionError(f"queue: {result.ops_succeeded} succeeded, {joiners * (1 + groups)} "
                                     f"expected; not succeeded: {counts}")
            result.verified_accounts, result.verified_memberships = await _verify(svc, run, joiners, names)
            counting = counters[TARGET]
            result.by_kind = Counter(counting.by_kind)
            result.seconds = Counter(counting.seconds)
            result.bulk_ops = Counter(counting.bulk_ops)
            result.create_bytes = counting.create_bytes
            result.by_method = Counter(connector.recorder.calls_by_method)
            result.recorded_calls = connector.recorder.calls
            if result.recorded_calls != result.total:
                raise AssertionError(f"recorder saw {result.recorded_calls} requests, the counter {result.total}")
            caps = await connector.capabilities()
            result.max_operations, result.max_payload, result.max_results = (
                caps.max_operations, caps.max_payload, caps.max_results)
            if caps.bulk != bulk:
                raise AssertionError(f"the connector saw bulk={caps.bulk}, the server was set to {bulk}")
            server = svc.scim[TARGET]
            users = [u for u in await server.users() if str(u.get("externalId", "")).startswith(f"{run}-")]
            group_ids = [(await server.group(name) or {}).get("id", "") for name in names]
            result.minimum = minimum(result, connector.config, bulk=bulk,
                                     member_ids=[u["id"] for u in users], group_ids=group_ids)
            return result
        finally:
            await svc.close()


def _ratio(made: int, least: int) -> str:
    return f"{made / least:.2f}" if least else "-"


def table(results: list[RunResult]) -> Table:
    first = results[0]
    t = Table(title=f"{first.joiners:,} joiners x {first.groups} groups into scim2-server "
                    f"(one SCIM target, worker_batch_size {first.batch_size})")
    t.add_column("figure")
    for r in results:
        t.add_column(f"{r.database}\n{r.mode}", justify="right")

    def row(name: str, fn) -> None:
        t.add_row(name, *(fn(r) for r in results))

    row("server limits: maxOperations / maxPayloadSize / maxResults",
        lambda r: f"{r.max_operations} / {r.max_payload} / {r.max_results}" if r.mode == "Bulk"
        else f"- / - / {r.max_results}")
    row("queue operations succeeded", lambda r: f"{r.ops_succeeded:,}")
    row("operation attempts beyond one each (retries)", lambda r: str(r.attempts - r.ops_succeeded))
    row("accounts verified / memberships verified",
        lambda r: f"{r.verified_accounts:,} / {r.verified_memberships:,}")
    row("intake of all events / planning them (s)", lambda r: f"{r.intake_seconds:.2f} / {r.planning_seconds:.2f}")
    row("first accepted event -> all succeeded (s)", lambda r: f"{r.elapsed:.2f}")
    row("operations / s", lambda r: f"{r.ops_per_second:,.0f}")
    row("operations / s once planned (the worker and scim2-server alone)",
        lambda r: f"{r.worker_ops_per_second:,.0f}")
    row("  summed request time in scim2-server: match lookups / writes (s)", lambda r: (
        f"{r.seconds.get('GET Users (match)', 0):.1f} / "
        f"{sum(v for k, v in r.seconds.items() if k in WRITE_KINDS + SETUP_KINDS):.1f}"))
    t.add_section()
    for kind in WRITE_KINDS + SETUP_KINDS + READ_KINDS:
        if any(r.by_kind.get(kind) for r in results):
            row(f"  {kind}", lambda r, k=kind: str(r.by_kind.get(k, 0)))
    row("  operations inside Bulk requests", lambda r: ", ".join(
        f"{v} {k}" for k, v in sorted(r.bulk_ops.items())) if r.by_kind.get("POST Bulk") else "-")
    row("requests by method (RecordingTransport)", lambda r: ", ".join(
        f"{v} {k}" for k, v in sorted(r.by_method.items())))
    t.add_section()
    row("writes (users + memberships) / minimum", lambda r: f"{r.writes} / {r.minimum['writes']}")
    row("  writes / minimum", lambda r: _ratio(r.writes, r.minimum["writes"]))
    row("  minimum's Bulk bytes: creates / memberships (KiB)", lambda r: (
        f"{r.minimum['create_bytes'] / 1024:,.0f} / {r.minimum['patch_bytes'] / 1024:,.0f}"
        if r.mode == "Bulk" else "-"))
    row("group creates / minimum", lambda r: f"{r.by_kind.get('POST Groups (create)', 0)} / {r.minimum['setup']}")
    row("reads / minimum", lambda r: f"{r.reads} / {r.minimum['reads']}")
    row("  reads / minimum", lambda r: _ratio(r.reads, r.minimum["reads"]))
    row("all requests / minimum", lambda r: f"{r.total} / {r.minimum['total']}")
    row("  all requests / minimum", lambda r: _ratio(r.total, r.minimum["total"]))
    return t


async def run_all(*, joiners: int = 1000, groups: int = 5, postgres_url: str | None = None,
                  settings: dict[str, Any] | None = None, console: Console | None = None) -> list[RunResult]:
    console = console or Console()
    console.rule("provisioner bench scim-targets")
    results: list[RunResult] = []
    databases: list[tuple[str, str | None]] = [("sqlite", None)]
    if postgres_url:
        databases.append(("postgresql", postgres_url))
    for database, server_url in databases:
        for bulk in (True, False):
            if server_url:
                with temporary_postgres_database(server_url) as url:
                    results.append(await run_once(joiners=joiners, groups=groups, bulk=bulk, database_url=url,
                                                  database=database, settings=settings))
            else:
                results.append(await run_once(joiners=joiners, groups=groups, bulk=bulk, settings=settings))
    console.print(table(results))
    console.print(MINIMUM_DEFINITION, soft_wrap=True, highlight=False, markup=False)
    if not postgres_url:
        console.print("PostgreSQL skipped: pass --postgres-url or set PROVISIONER_BENCH_POSTGRES_URL")
    return results
