"""``provisioner bench kill-soak``: kill -9 a worker mid-round, N times, then read the tenant back.

Everything runs as real processes on loopback ports: the Graph sandbox (``provisioner sandbox
graph``), the API (``provisioner serve --no-workers``) and ``--workers`` worker processes
(``provisioner worker``), all sharing one scratch database (PostgreSQL with ``--postgres-url``,
else SQLite). Each trial sends one round of signed HR events (joiners, movers, leaves and
returns, leavers, rehires) over HTTP in concurrent batches; in every third trial (from the second;
the only one of a one-trial run) the API process
is killed with SIGKILL while batches are in flight and restarted, and the clients retry the same
batches (same event ids) until they get a 202. Then a worker that holds claimed operations (a
round in progress) is killed with SIGKILL and a new one started. After the last trial the bench
waits for the queue to drain and reads the sandbox back over Graph's HTTP API, judging every
person against the policies (``soak_readback``). Exit 1 when anything is lost, duplicated or
wrong, an event was refused, or the queue did not drain.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from provisioner.bench import soak_diagnose
from provisioner.bench.common import NO_BRAKES_ENV, temporary_postgres_database
from provisioner.bench.soak_people import Population, load_rules, write_config
from provisioner.bench.soak_readback import Verdict, judge, read_tenant
from provisioner.db import Database
from provisioner.intake.models import EventStatus, HREvent
from provisioner.intake.signing import signed_headers
from provisioner.migrations import upgrade
from provisioner.queue.models import Operation, OpStatus
from provisioner.sandbox.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SOURCE = "soak"
BATCH = 8  # events per request
SENDERS = 4  # concurrent HR clients
OPEN = (OpStatus.WAITING, OpStatus.PENDING, OpStatus.RUNNING)


@dataclass
class Figures:
    events: int = 0
    requests: int = 0
    retried: int = 0  # batches sent again after a dropped connection or a 5xx
    replays: int = 0  # retries answered "Idempotent-Replay: true": the killed request had committed
    refused: list[str] = field(default_factory=list)  # any other answer than 202
    worker_kills: int = 0
    mid_round: int = 0  # kills of a worker holding claimed operations
    held: int = 0  # operations the killed workers held
    api_kills: int = 0
    crashed: list[str] = field(default_factory=list)  # processes that exited without being killed
    log: list[str] = field(default_factory=list)


class Fleet:
    """The processes under test; each one's stderr goes to its own file under ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path, api_port: int) -> None:
        self.env, self.logs, self.api_port = env, logs, api_port
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._all: list[subprocess.Popen] = []
        self._n = 0

    def start(self, label: str, *args: str) -> subprocess.Popen:
        self._n += 1
        with open(self.logs / f"{self._n:03d}-{label}.log", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=self.env,
                                    stdout=subprocess.DEVNULL, stderr=err)
        self._all.append(proc)
        return proc

    def start_api(self) -> None:
        self.api = self.start("api", "serve", "--no-workers", "--port", str(self.api_port))

    def start_worker(self) -> None:
        self.workers.append(self.start("worker", "worker"))

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self._all:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._all:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _post(client: httpx.AsyncClient, secret: str, batch: list[dict[str, Any]], figures: Figures) -> None:
    """Send one batch until it is accepted: a dropped connection or a 5xx (the API killed or
    restarting) is retried with the very same body, as an HR system retries."""
    body = json.dumps({"events": batch}).encode()
    deadline, attempt = time.monotonic() + 300, 0
    while True:
        figures.requests += 1
        attempt += 1
        figures.retried += attempt == 2
        try:
            response = await client.post("/hr/events", content=body, headers=signed_headers(SOURCE, secret, body))
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 202:
            figures.replays += response.headers.get("Idempotent-Replay") == "true"
            return
        if response is not None and response.status_code < 500:
            figures.refused.append(f"{batch[0]['event_id']}..: {response.status_code} {response.text[:300]}")
            return
        if time.monotonic() > deadline:
            figures.refused.append(f"{batch[0]['event_id']}..: no 202 within 300 s")
            return
        await asyncio.sleep(0.2)


async def _send_trial(base: str, secret: str, events: list[dict[str, Any]], figures: Figures,
                      fleet: Fleet | None, rng: random.Random) -> None:
    """Every batch of the trial through ``SENDERS`` concurrent clients; with ``fleet``, the API
    is killed once some batches are in (others in flight) and restarted at once."""
    batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    pending, armed, in_flight = list(reversed(batches)), asyncio.Event(), asyncio.Event()
    done = [0]
    kill_after = rng.randint(0, max(0, len(batches) - SENDERS))

    async def sender(client: httpx.AsyncClient) -> None:
        while pending:
            batch = pending.pop()
            if armed.is_set():
                in_flight.set()
            await _post(client, secret, batch, figures)
            done[0] += 1
            if done[0] >= kill_after:
                armed.set()

    async def killer(senders: asyncio.Future) -> None:
        # Once armed, as soon as a request has been sent: kill while the API works on it.
        waiting = asyncio.ensure_future(in_flight.wait())
        await asyncio.wait([waiting, senders], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        await asyncio.sleep(rng.uniform(0, 0.04))
        assert fleet is not None and fleet.api is not None
        Fleet.kill(fleet.api)
        figures.api_kills += 1
        killed_at, before = time.monotonic(), done[0]
        fleet.start_api()
        await _wait_up(f"{base}/healthz", timeout=300)
        up = time.monotonic() - killed_at
        await senders
        figures.log.append(f"API killed after {before} of {len(batches)} batches accepted, up again in "
                           f"{up:.1f} s, every batch accepted {time.monotonic() - killed_at:.1f} s after the kill")

    if kill_after == 0:
        armed.set()
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        senders = asyncio.gather(*(sender(client) for _ in range(SENDERS)))
        if fleet:
            await killer(senders)
        await senders


def _held_by(db: Database) -> dict[int, int]:
    """Running operations per worker process id (``claimed_by`` is host:pid:nonce)."""
    with db.transaction() as session:
        rows = session.execute(select(Operation.claimed_by, func.count()).where(
            Operation.status == OpStatus.RUNNING).group_by(Operation.claimed_by)).all()
    held: dict[int, int] = {}
    for claimed_by, count in rows:
        parts = (claimed_by or "").split(":")
        if len(parts) >= 3 and parts[-2].isdigit():
            held[int(parts[-2])] = held.get(int(parts[-2]), 0) + count
    return held


async def _kill_worker(fleet: Fleet, db: Database, rng: random.Random, figures: Figures, trial: int) -> None:
    """SIGKILL a worker mid-round: after a random pause, one that holds claimed operations
    (looked for during up to 5 s; failing that, any), then start a new one."""
    await asyncio.sleep(rng.uniform(0.0, 1.0))
    for proc in [w for w in fleet.workers if w.poll() is not None]:
        figures.crashed.append(f"trial {trial}: worker pid {proc.pid} exited by itself ({proc.returncode})")
        fleet.workers.remove(proc)
        fleet.start_worker()
    deadline, held = time.monotonic() + 5, {}
    while time.monotonic() < deadline:
        held = {pid: n for pid, n in (await asyncio.to_thread(_held_by, db)).items()
                if pid in {w.pid for w in fleet.workers if w.poll() is None}}
        if held:
            break
        await asyncio.sleep(0.05)
    live = [w for w in fleet.workers if w.poll() is None]
    pid = rng.choice(sorted(held)) if held else None
    victim = next((w for w in live if w.pid == pid), None) or rng.choice(live)
    Fleet.kill(victim)
    fleet.workers.remove(victim)
    figures.worker_kills += 1
    figures.mid_round += bool(held.get(victim.pid))
    figures.held += held.get(victim.pid, 0)
    figures.log.append(f"trial {trial}: worker pid {victim.pid} killed holding {held.get(victim.pid, 0)} "
                       f"running operation(s)")
    fleet.start_worker()


def _open_work(db: Database) -> tuple[int, int]:
    with db.transaction() as session:
        due = session.scalar(select(func.count()).select_from(HREvent).where(
            HREvent.status == EventStatus.PENDING))
        ops = session.scalar(select(func.count()).select_from(Operation).where(Operation.status.in_(OPEN)))
    return int(due or 0), int(ops or 0)


def _summary(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    with db.transaction() as session:
        events = dict(session.execute(select(HREvent.status, func.count()).group_by(HREvent.status)).all())
        ops = dict(session.execute(select(Operation.status, func.count()).group_by(Operation.status)).all())
    return events, ops


async def _drain(db: Database, timeout: float, console: Console) -> float | None:
    """Seconds until no event is pending and no operation open (twice in a row), or None."""
    t0, quiet, shown = time.monotonic(), 0, 0.0
    while time.monotonic() - t0 < timeout:
        due, ops = await asyncio.to_thread(_open_work, db)
        quiet = quiet + 1 if (due, ops) == (0, 0) else 0
        if quiet >= 2:
            return time.monotonic() - t0
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            console.print(f"draining: {due} event(s) pending, {ops} operation(s) open", highlight=False)
        await asyncio.sleep(0.5)
    return None


async def _wait_up(url: str, headers: dict[str, str] | None = None, timeout: float = 90) -> None:
    async with httpx.AsyncClient(headers=headers) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


async def soak(database_url: str, *, trials: int, people: int, workers: int, kill_api: bool, seed: int,
               lease_seconds: float, drain_timeout: float, logs: Path,
               console: Console) -> tuple[Figures, Verdict, dict[str, Any]]:
    rng = random.Random(seed)
    folder = logs.parent
    graph_port, api_port = free_port(), free_port()
    graph_url = f"http://127.0.0.1:{graph_port}/v1.0"
    policies_dir, targets_dir = write_config(folder / "config", REPO, graph_url)
    policies, managed = load_rules(policies_dir, targets_dir)
    secret, token = uuid.uuid4().hex, uuid.uuid4().hex
    env = {**os.environ, "PROVISIONER_DATABASE_URL": database_url, "PROVISIONER_POLICIES_DIR": str(policies_dir),
           "PROVISIONER_TARGETS_DIR": str(targets_dir), "PROVISIONER_SANDBOX_TOKEN": token,
           "PROVISIONER_HR_SECRETS": json.dumps({SOURCE: secret}), "PROVISIONER_LOG_LEVEL": "WARNING",
           "PROVISIONER_LOG_FORMAT": "text", "PROVISIONER_WORKER_POLL_SECONDS": "0.2",
           "PROVISIONER_DUE_EVENTS_SECONDS": "0.2", "PROVISIONER_LEASE_SECONDS": str(lease_seconds), **NO_BRAKES_ENV}
    upgrade(database_url)
    db = Database(database_url)
    fleet = Fleet(env, logs, api_port)
    figures, population = Figures(), Population(people, trials, rng, uuid.uuid4().hex[:6])
    t0 = time.monotonic()
    try:
        fleet.start("sandbox", "sandbox", "graph", "--port", str(graph_port), "--no-throttle")
        fleet.start_api()
        for _ in range(workers):
            fleet.start_worker()
        await _wait_up(f"{graph_url}/groups", {"Authorization": f"Bearer {token}"})
        await _wait_up(f"http://127.0.0.1:{api_port}/healthz")
        logged = 0
        for trial in range(trials):
            events = population.trial_events(trial)
            figures.events += len(events)
            # every third trial from the second (the only one of a one-trial run)
            with_api_kill = kill_api and trial % 3 == 1 % min(3, trials) and len(events) > BATCH
            await _send_trial(f"http://127.0.0.1:{api_port}", secret, events, figures,
                              fleet if with_api_kill else None, rng)
            await _kill_worker(fleet, db, rng, figures, trial)
            console.print(f"{time.monotonic() - t0:6.1f} s  trial {trial + 1}/{trials}: {len(events)} events; "
                          f"{'; '.join(figures.log[logged:])}", highlight=False)
            logged = len(figures.log)
        drained = await _drain(db, drain_timeout, console)
        events, ops = await asyncio.to_thread(_summary, db)
        tenant = await asyncio.to_thread(read_tenant, graph_url, token, managed)
        verdict = judge(tenant, population.people, policies)
        if verdict.people:
            await asyncio.to_thread(soak_diagnose.write, db, sorted(verdict.people), logs / "people.txt")
        extra = {"drained_s": drained, "events": events, "ops": ops, "elapsed_s": time.monotonic() - t0,
                 "mix": population.counts, "accounts": len(tenant.users),
                 "memberships": sum(len(m) for m in tenant.members.values())}
        return figures, verdict, extra
    finally:
        fleet.close()
        db.dispose()


def report(figures: Figures, verdict: Verdict, extra: dict[str, Any], *, engine: str, trials: int,
           people: int, workers: int, console: Console) -> int:
    table = Table(title=f"kill -9 soak on {engine}: {people} people, {workers} worker processes, "
                        "read back from the Graph sandbox", title_justify="left")
    for col in ("trials", "events", "worker kills (mid-round)", "API kills", "batches retried / replayed",
                "lost", "duplicated", "wrong"):
        table.add_column(col)
    table.add_row(str(trials), str(figures.events), f"{figures.worker_kills} ({figures.mid_round}, "
                  f"{figures.held} ops held)", str(figures.api_kills), f"{figures.retried} / {figures.replays}",
                  str(len(verdict.lost)), str(len(verdict.duplicated)), str(len(verdict.wrong)))
    console.print(table)
    mix = ", ".join(f"{k} {v}" for k, v in sorted(extra["mix"].items()))
    drained = extra["drained_s"]
    console.print(f"events sent: {mix} ({figures.requests} requests); stored by status: "
                  f"{json.dumps(extra['events'], sort_keys=True)}; "
                  f"operations: {json.dumps(extra['ops'], sort_keys=True)}; tenant: {extra['accounts']} "
                  f"accounts, {extra['memberships']} managed memberships; drained "
                  f"{f'in {drained:.1f} s' if drained is not None else 'NOT within the timeout'} after the "
                  f"last trial; {extra['elapsed_s']:.0f} s in all", highlight=False)
    problems = [("LOST", verdict.lost), ("DUPLICATED", verdict.duplicated), ("WRONG", verdict.wrong),
                ("REFUSED", figures.refused)]
    for label, items in problems:
        for item in items[:20]:
            console.print(f"[red]{label}[/] {item}", highlight=False)
        if len(items) > 20:
            console.print(f"[red]{label}[/] ... and {len(items) - 20} more", highlight=False)
    stored = sum(extra["events"].values())
    if stored != figures.events:
        console.print(f"[red]EVENTS[/] {figures.events} sent and accepted, {stored} stored", highlight=False)
    for item in figures.crashed:
        console.print(f"[red]CRASHED[/] {item}", highlight=False)
    ok = verdict.ok and not figures.refused and not figures.crashed and drained is not None and stored == figures.events
    return 0 if ok else 1


async def run(*, trials: int, people: int, workers: int, kill_api: bool, seed: int | None,
              lease_seconds: float, drain_timeout: float, postgres_url: str | None, console: Console) -> int:
    seed = random.randrange(1 << 30) if seed is None else seed
    engine = "PostgreSQL" if postgres_url else "SQLite"
    console.rule(f"provisioner bench kill-soak --trials {trials} --people {people} --workers {workers} "
                 f"--seed {seed} ({engine})")
    if not postgres_url:
        console.print("on SQLite: pass --postgres-url or set PROVISIONER_BENCH_POSTGRES_URL for PostgreSQL")
    folder = Path(tempfile.mkdtemp(prefix="kill-soak-"))
    logs = folder / "logs"
    logs.mkdir()
    code = 1
    try:
        with ExitStack() as stack:
            url = (stack.enter_context(temporary_postgres_database(postgres_url, prefix="provisioner_soak"))
                   if postgres_url else f"sqlite:///{folder / 'soak.db'}")
            figures, verdict, extra = await soak(url, trials=trials, people=people, workers=workers,
                                                 kill_api=kill_api, seed=seed, lease_seconds=lease_seconds,
                                                 drain_timeout=drain_timeout, logs=logs, console=console)
            code = report(figures, verdict, extra, engine=engine, trials=trials, people=people,
                          workers=workers, console=console)
            (logs / "soak.log").write_text("\n".join(figures.log) + "\n")
    finally:
        if code == 0:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            console.print(f"process logs kept in {logs}", highlight=False)
    return code
