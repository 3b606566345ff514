"""The SCIM-targets benchmark, small: it verifies what it provisioned and counts consistently."""

from __future__ import annotations

import io

from rich.console import Console

from provisioner.bench.scim_targets import MINIMUM_DEFINITION, run_all


async def test_scim_targets_bench_small_run_prints_and_counts() -> None:
    out = io.StringIO()
    results = await run_all(joiners=20, groups=2, console=Console(file=out, width=200))
    printed = out.getvalue()
    assert "20 joiners x 2 groups into scim2-server" in printed
    assert "all requests / minimum" in printed
    assert MINIMUM_DEFINITION.splitlines()[0] in printed

    assert [r.mode for r in results] == ["Bulk", "no Bulk"]
    for r in results:
        assert r.ops_succeeded == 20 * 3 and not r.ops_other and r.attempts >= r.ops_succeeded
        assert (r.verified_accounts, r.verified_memberships) == (20, 40)
        assert r.recorded_calls == r.total == sum(r.by_method.values())
        assert r.writes >= r.minimum["writes"] and r.reads >= r.minimum["reads"]
        assert r.total >= r.minimum["total"]
        assert r.by_kind["POST Groups (create)"] == 2
        assert r.reads >= 3
    bulk, plain = results
    # Bulk on: creates and group PATCHes travel inside Bulk requests, at least one per phase.
    assert bulk.by_kind["POST Bulk"] >= 2 and not bulk.by_kind["POST Users"] and not bulk.by_kind["PATCH Groups"]
    assert bulk.bulk_ops["POST Users"] == 20 and bulk.bulk_ops["PATCH Groups"] >= 2
    assert bulk.minimum["writes"] == 2
    # Bulk off: one POST per account, at least one PATCH per group.
    assert plain.by_kind["POST Users"] == 20 and plain.by_kind["PATCH Groups"] >= 2
    assert not plain.by_kind["POST Bulk"] and plain.minimum["writes"] == 22
