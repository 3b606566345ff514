"""The SCIM benchmark runs end to end (tiny sizes): servers start, scenarios succeed, cleanup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from provisioner.bench.scim_endpoint import run


@pytest.mark.parametrize(("client", "concurrency"), [("httpx", 1), ("aiohttp", 2)])
def test_bench_runs_small(client: str, concurrency: int) -> None:
    out = io.StringIO()
    results = run(
        users=300,
        peer_users=30,
        seconds=0.3,
        client=client,  # type: ignore[arg-type]
        concurrency=concurrency,
        console=Console(file=out, width=160),
    )
    assert [row["scenario"] for row in results] == ["eq", "sw", "get", "post"]
    for row in results:
        assert row["ours"]["requests"] > 0 and row["ours"]["errors"] == 0, row
        assert row["peer"]["requests"] > 0 and row["peer"]["errors"] == 0, row
        assert row["ours"]["p50_ms"] > 0 and row["ratio"] > 0
    assert "SCIM endpoint vs scim2-server" in out.getvalue()
