"""`provisioner bench scale` at small N, for correctness (timing is the benchmark's business):
the Graph sandbox, `provisioner serve`, `import` and `policy reload` as real processes, 60 people
in about 8 groups each; every account and membership read back from the sandbox's own store, the
Graph writes against the minimum (N creates + per group ceil(members / 20) bind PATCHes), and
the figures table printed. On SQLite, and on PostgreSQL when PROVISIONER_TEST_POSTGRES_URL is set
(scratch databases the bench creates and drops on that server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from provisioner.bench.scale import Options, measure
from provisioner.bench.scale_report import render
from tests.conftest import ENGINES, PG_URL


@pytest.mark.parametrize("engine", ENGINES)
def test_scale_path_small_reads_everything_back_at_minimum_writes(engine: str, tmp_path: Path) -> None:
    opts = Options(people=60, groups_per_person=8, postgres_url=PG_URL if engine == "postgresql" else None,
                   skip=("reconcile", "planning", "throughput", "help"), timeout=120.0)
    console = Console(record=True, width=220)
    results = measure(opts, console, tmp_path)
    render(results, "bench scale (test)", console)
    out = console.export_text()

    assert not results.problems, out  # every account and every membership, load and rollout, read back
    figures = {f.number: f for f in results.figures}
    assert {"1", "2", "3", "5a", "5b", "7"} <= set(figures), out
    assert figures["1"].measured is not None and figures["5a"].measured is not None, out
    assert "Graph writes / minimum writes" in out and "bench scale (test)" in out
    assert 0 < figures["7"].measured < 2_000, out  # the peak RSS of real processes was read
    # Graph writes against the minimum (60 creates + per group ceil(members/20) binds)
    assert figures["2"].measured <= 1.05, out
