"""The stage every phase of ``provisioner bench scale`` runs on: a config folder (policies,
targets, the HR extract), a Graph sandbox process, a migrated database (SQLite in the run's
folder or a scratch database on a PostgreSQL server) and the service's processes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provisioner.bench.common import NO_BRAKES_ENV, temporary_postgres_database
from provisioner.bench.scale_people import Company, write_config, write_csv
from provisioner.bench.scale_procs import Processes, ReadBack, SandboxClient, environment, wait_http, wait_read_back
from provisioner.bench.scale_report import Results
from provisioner.migrations import upgrade
from provisioner.sandbox.ports import free_port

WRITES_PER_SECOND = 500.0  # Graph's 3,000 writes per 150 s at --scale 25


@contextmanager
def database(postgres_url: str | None, folder: Path, name: str) -> Iterator[str]:
    if postgres_url:
        with temporary_postgres_database(postgres_url, prefix="provisioner_scale") as url:
            yield url
    else:
        yield f"sqlite:///{folder / f'{name}.db'}"


class Stage:
    """A config folder, a Graph sandbox process and a migrated database: what every phase runs on."""

    def __init__(self, folder: Path, company: Company, database_url: str, *, scale: float | None,
                 writes_per_second: float = WRITES_PER_SECOND, burst: int = 200) -> None:
        self.folder, self.company, self.database_url = folder, company, database_url
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "logs").mkdir(exist_ok=True)
        graph_port, self.api_port = free_port(), free_port()
        self.graph_base = f"http://127.0.0.1:{graph_port}"
        self.policies, self.targets = write_config(folder / "config", company, f"{self.graph_base}/v1.0",
                                                   writes_per_second=writes_per_second, burst=burst)
        self.csv = write_csv(company, folder / "hr.csv")
        company.check_against_policies(self.policies, self.targets)
        token = uuid.uuid4().hex
        self.env = environment(
            PROVISIONER_DATABASE_URL=database_url, PROVISIONER_POLICIES_DIR=str(self.policies),
            PROVISIONER_TARGETS_DIR=str(self.targets), PROVISIONER_SANDBOX_TOKEN=token,
            PROVISIONER_HR_SECRETS=json.dumps({"scale": uuid.uuid4().hex}), PROVISIONER_LOG_LEVEL="WARNING",
            PROVISIONER_LOG_FORMAT="text", PROVISIONER_WORKER_POLL_SECONDS="0.2",
            PROVISIONER_DUE_EVENTS_SECONDS="0.2", COLUMNS="100000", **NO_BRAKES_ENV)
        self.procs = Processes(self.env, folder / "logs")
        upgrade(database_url)
        args = ["sandbox", "graph", "--port", str(graph_port)]
        args += ["--scale", str(scale)] if scale else ["--no-throttle"]
        self.sandbox_proc = self.procs.start("sandbox", *args)
        self.sandbox = SandboxClient(self.graph_base, token)
        self.sandbox.wait_up()
        self.serve: Any = None

    def start_service(self, workers: int = 1) -> None:
        """``provisioner serve`` (API, processor, worker) and ``workers - 1`` ``provisioner worker``."""
        self.serve = self.procs.start("serve", "serve", "--port", str(self.api_port))
        for _ in range(workers - 1):
            self.procs.start("worker", "worker")
        wait_http(f"http://127.0.0.1:{self.api_port}/healthz")

    def load(self, timeout: float, say: Callable[[str], None] | None = None) -> tuple[float, ReadBack, Any]:
        """``provisioner import`` (timed as a process) and the wait for the read-back."""
        company = self.company
        t0 = time.monotonic()
        imported = self.procs.run("import", "import", str(self.csv), timeout=timeout)
        if imported.code != 0:
            raise RuntimeError(f"provisioner import exited {imported.code}: {imported.output[-2000:]}")
        back = wait_read_back(self.sandbox, company.expected, t0, timeout, users_at_least=len(company.rows),
                              memberships_at_least=company.memberships, say=say)
        return imported.wall, back, imported

    def close(self) -> None:
        self.procs.close()
        self.sandbox.close()



def record_peaks(results: Results, peak: dict[str, float]) -> None:
    """Fold ``peak`` (MB per process label) into figure 7."""
    old = next((f for f in results.figures if f.number == "7"), None)
    merged = results.peaks
    for label, mb in peak.items():
        merged[label] = max(merged.get(label, 0.0), mb)
    if old is not None:
        results.figures.remove(old)
    worst = max(merged, key=merged.get) if merged else None
    results.add("7", "peak RSS of any process (VmHWM)", merged[worst] if worst else None, "MB", 500.0,
                note=", ".join(f"{k} {v:,.0f}" for k, v in sorted(merged.items(), key=lambda kv: -kv[1])))
