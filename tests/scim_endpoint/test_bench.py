"""The SCIM benchmark runs end to end (tiny sizes): servers start, scenarios succeed in\nalternating rounds, cleanup."""

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
        rounds=3,
        client=client,  # type: ignore[arg-type]
        concurrency=concurrency,
        console=Console(file=out, width=160),
    )
    assert [row["scenario"] for row in results] == ["eq", "sw", "get", "post"]
    for row in results:
        assert row["ours"]["requests"] > 0 and row["ours"]["errors"] == 0, row
        assert row["peer"]["requests"] > 0 and row["peer"]["errors"] == 0, row
        assert row["ours"]["p50_ms"] > 0 and row["ratio"] > 0
        # alternating rounds; requests are numbered on across them (POST /Users names stay
        # unique, so the peer and the endpoint answer 201, never 409)
        assert len(row["round_ratios"]) == 3 and all(r > 0 for r in row["round_ratios"])
    assert "SCIM endpoint vs scim2-server" in out.getvalue()
