"""`provisioner bench kill-soak` end to end, small: real sandbox, API and worker processes, a worker
killed with SIGKILL mid-run (and the API mid-batch), the tenant read back over Graph's HTTP API.
On PostgreSQL when PROVISIONER_TEST_POSTGRES_URL is set (a scratch database the command creates
and drops), and on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ENGINES, PG_URL


@pytest.mark.parametrize("engine", ENGINES)
def test_kill_soak_one_trial_reads_back_clean(engine: str) -> None:
    args = [sys.executable, "-m", "provisioner", "bench", "kill-soak", "--trials", "1", "--people", "20",
            "--seed", "7", "--lease-seconds", "3", "--drain-timeout", "120"]
    env = {k: v for k, v in os.environ.items() if k != "PROVISIONER_BENCH_POSTGRES_URL"}
    # PostgreSQL: two worker processes sharing the queue; SQLite: one (killed and restarted)
    args += ["--postgres-url", PG_URL] if engine == "postgresql" else ["--workers", "1"]
    done = subprocess.run(args, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert ("(PostgreSQL)" if engine == "postgresql" else "(SQLite)") in out
    # one trial: 20 joiners; a worker killed, and the API once mid-batch
    row = next(line for line in out.splitlines() if line.startswith("│ 1 "))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[0] == "1" and cells[1] == "20", row
    assert cells[2].startswith("1 (") and cells[3] == "1", row
    assert cells[5:] == ["0", "0", "0"], row  # lost, duplicated, wrong
    assert "tenant: 20 accounts" in out  # every person hired has exactly one account
    assert "drained in" in out
