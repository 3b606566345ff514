"""``provisioner bench hr-bulk`` runs end to end (a real uvicorn process on loopback), small."""

from __future__ import annotations

from typer.testing import CliRunner

from provisioner.cli.main import app


def test_bench_hr_bulk_prints_rates():
    result = CliRunner().invoke(app, ["bench", "hr-bulk", "--records", "100", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "POST /hr/bulkUpload intake on SQLite" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│ /hr/")]
    assert len(rows) == 4, result.output
    assert all(" 100 " in row for row in rows)  # every record of every run stored (checked by the bench)
    assert CliRunner().invoke(app, ["bench", "hr-bulk", "--records", "10"]).exit_code == 2
