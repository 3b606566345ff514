"""SIGTERM to a real `provisioner serve` (and, on PostgreSQL, a `provisioner worker`) in the
middle of a throttled onboarding wave: each process exits within seconds, claims nothing more,
records the outcomes it has and gives back every claim without one (no operation is left
`running` under a lease of a process that stopped cleanly). A new serve then finishes the
wave: every joiner exists exactly once in Graph, read back from the Graph sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import func, select

from provisioner.db import Database
from provisioner.demo.harness import REPO
from provisioner.intake.models import EventStatus, HREvent
from provisioner.migrations import upgrade
from provisioner.queue.models import Operation, OpStatus
from provisioner.sandbox.ports import free_port
from tests.cli.test_serve_processes import post, users, wait_for
from tests.support import hire

JOINERS = 120


def _statuses(db: Database) -> dict[str, int]:
    with db.read() as session:
        return dict(session.execute(select(Operation.status, func.count()).group_by(Operation.status)).tuples().all())


def _pending_events(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(HREvent).where(HREvent.status == EventStatus.PENDING))


def test_sigterm_stops_serve_within_seconds_and_gives_back_its_claims(database_url: str, tmp_path: Path):
    graph_port, api_port, scim_port = free_port(), free_port(), free_port()
    targets = tmp_path / "targets"
    targets.mkdir()
    data = yaml.safe_load((REPO / "targets" / "entra.yaml").read_text())
    data["graph_url"] = f"http://127.0.0.1:{graph_port}/v1.0"
    (targets / "entra.yaml").write_text(yaml.safe_dump(data))
    wiki = yaml.safe_load((REPO / "targets" / "wiki.yaml").read_text())
    wiki["base_url"] = f"http://127.0.0.1:{scim_port}/v2"
    (targets / "wiki.yaml").write_text(yaml.safe_dump(wiki))
    env = {**os.environ, "WIKI_SCIM_TOKEN": "wiki-token", "PROVISIONER_DATABASE_URL": database_url,
           "PROVISIONER_TARGETS_DIR": str(targets), "PROVISIONER_POLICIES_DIR": str(REPO / "policies"),
           "PROVISIONER_SANDBOX_TOKEN": "sandbox-token", "PROVISIONER_HR_SECRETS": json.dumps({"workday": "hr-secret"}),
           "PROVISIONER_LOG_LEVEL": "WARNING", "PROVISIONER_WORKER_POLL_SECONDS": "0.2",
           "PROVISIONER_DUE_EVENTS_SECONDS": "0.2", "PYTHONPATH": str(REPO)}
    upgrade(database_url)
    db = Database(database_url)
    started: list[subprocess.Popen] = []

    def start(*args: str, program: list[str] | None = None) -> subprocess.Popen:
        log = (tmp_path / f"{len(started)}.log").open("wb")  # a file: a full pipe would block the process
        proc = subprocess.Popen(program or [sys.executable, "-m", "provisioner", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
        log.close()  # (the child has its own descriptor)
        proc.log = log.name
        started.append(proc)
        return proc

    # Graph's real budget (no scaling): the wave is throttled, rounds wait on Retry-After.
    start("sandbox", "graph", "--port", str(graph_port), "--scale", "1")
    start(program=[str(Path(sys.executable).parent / "scim2-server"), "--port", str(scim_port),
                   "--bearer-token", "wiki-token"])
    graph = httpx.Client(base_url=f"http://127.0.0.1:{graph_port}/v1.0", headers={"Authorization": "Bearer sandbox-token"})
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}")
    try:
        serving = [start("serve", "--port", str(api_port))]
        if db.dialect == "postgresql":
            serving.append(start("worker"))
        wait_for(lambda: graph.get("/groups").status_code == 200, what="the Graph sandbox")
        wait_for(lambda: api.get("/healthz").status_code == 200, what="the API")
        batch = [hire(f"gs{n}", f"GS{n}", "Grace", f"Ful{n}", "Engineering") for n in range(JOINERS)]
        assert post(api, {"events": batch}).status_code == 202
        # Every event applied first: this is about the worker's rounds (the event processor's own
        # stop between events is tested with it).
        wait_for(lambda: _pending_events(db) == 0, timeout=120, what="the events applied")
        wait_for(lambda: (lambda n: n.get(OpStatus.SUCCEEDED, 0) >= 5 and n.get(OpStatus.RUNNING, 0) > 0)(
            _statuses(db)), what="the wave under way (operations running)")

        for proc in serving:
            proc.send_signal(signal.SIGTERM)
        begun = time.monotonic()
        for proc in serving:
            code = proc.wait(timeout=30)
            took = time.monotonic() - begun
            print(f"\n{proc.args[-3:]} exited {code} {took:.1f} s after SIGTERM")
            assert code == 0, Path(proc.log).read_text()[-2000:]
            assert took < 10, f"{took:.1f} s to stop"
        left = _statuses(db)
        assert left.get(OpStatus.RUNNING, 0) == 0, left  # finished or given back, none under a lease
        assert left.get(OpStatus.DEAD, 0) == 0, left

        start("serve", "--port", str(api_port))  # a new serve finishes the wave
        wait_for(lambda: set(_statuses(db)) <= {OpStatus.SUCCEEDED, OpStatus.CANCELLED}, timeout=240,
                 what="the wave finished")
        wait_for(lambda: all(len(users(graph, f"GS{n}")) == 1 for n in range(JOINERS)), timeout=60,
                 what="every joiner in Graph")
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if hasattr(proc, "log"):
                Path(proc.log).unlink(missing_ok=True)
        graph.close()
        api.close()
        db.dispose()
