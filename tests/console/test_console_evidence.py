"""Evidence narrowed to a leaver or a system, the same in the console (the period's leavers and
their systems on the page; the download), the HTTP API and the CLI: each read from the service's
database after real terminations revoked in the Graph sandbox and the wiki."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import utcnow
from provisioner.settings import get_settings
from tests.console.conftest import bearer
from tests.support import event, hire


async def _two_leavers(cc) -> str:
    await cc.send([hire("h-l1", "L1", "Leo", "Leaver", "Sales"), hire("h-l2", "L2", "Lia", "Later", "Sales")])
    await cc.drain()
    await cc.send([event("t-l1", "terminate", "L1", immediate=True), event("t-l2", "terminate", "L2", immediate=True)])
    await cc.drain()
    return utcnow().date().isoformat()


def _leaver_rows(html: str) -> list[str]:
    """The (leaver, system) rows of the page's table, as text."""
    body = html.split("<caption>Leavers and their systems</caption>", 1)[1].split("</table>", 1)[0]
    return [" ".join(row.split()) for row in body.split("<tr>")[2:]]


async def test_the_evidence_page_lists_the_leavers_and_their_systems_and_narrows_them(cc, tokens, console):
    day = await _two_leavers(cc)
    c = console()
    await c.sign_in(bearer(tokens["audit"]))
    every = await c.get("/console/evidence", params={"from": day, "to": day})
    assert every.status_code == 200
    assert "2 leaver(s); 2 with every system verified." in every.text
    rows = _leaver_rows(every.text)
    assert len(rows) == 4, rows  # two leavers, each in entra and the wiki
    assert sum("Leo Leaver</a> (L1)" in r for r in rows) == 1 and sum("Lia Later</a> (L2)" in r for r in rows) == 1
    assert all("verified" in r and "not verified" not in r for r in rows)
    assert sum("<td>entra</td>" in r for r in rows) == 2 and sum("<td>wiki</td>" in r for r in rows) == 2

    one = await c.get("/console/evidence", params={"from": day, "to": day, "employee_id": "L2"})
    assert "1 leaver(s)" in one.text and "Lia Later</a> (L2)" in one.text and "Leo Leaver" not in one.text
    wiki = await c.get("/console/evidence", params={"from": day, "to": day, "target": "wiki"})
    rows = _leaver_rows(wiki.text)
    assert len(rows) == 2 and all("<td>wiki</td>" in r and "<td>entra</td>" not in r for r in rows)
    assert '<option value="wiki" selected>wiki</option>' in wiki.text  # the form keeps the filter

    file = await c.get("/console/evidence/download", params={"from": day, "to": day, "target": "wiki",
                                                             "employee_id": "L1", "format": "csv"})
    lines = list(csv.DictReader(io.StringIO(file.text)))
    assert [(r["employee_id"], r["system"], r["verified"]) for r in lines] == [("L1", "wiki", "True")]
    manifest = (await c.get("/console/evidence/download", params={"from": day, "to": day, "target": "wiki",
                                                                  "employee_id": "L1", "part": "manifest"})).json()
    assert manifest["filters"] == {"employee_id": "L1", "target": "wiki"} and manifest["leavers"] == 1
    assert manifest["sha256"] == hashlib.sha256(file.content).hexdigest()
    bad = await c.get("/console/evidence", params={"from": day, "to": "yesterday"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text


async def test_the_api_and_the_cli_narrow_the_evidence_the_same_way(cc, tokens, monkeypatch, tmp_path: Path):
    day = await _two_leavers(cc)
    api = await cc.api.get("/evidence/revocations", headers=tokens["audit"],
                           params={"from": day, "to": day, "employee_id": "L2", "target": "entra"})
    assert api.status_code == 200
    body = api.json()
    assert [(r["employee_id"], [s["target"] for s in r["systems"]]) for r in body["records"]] == [("L2", ["entra"])]
    assert body["manifest"]["filters"] == {"employee_id": "L2", "target": "entra"}
    nobody = await cc.api.get("/evidence/revocations", headers=tokens["audit"],
                              params={"from": day, "to": day, "target": "payroll"})
    assert nobody.json()["records"] == [] and nobody.json()["manifest"]["leavers"] == 0
    too_long = await cc.api.get("/evidence/revocations", headers=tokens["audit"],
                                params={"from": day, "to": day, "employee_id": "E" * 101})
    assert too_long.status_code in (400, 422) and "employee_id" in too_long.text

    monkeypatch.setenv("PROVISIONER_DATABASE_URL", cc.settings.database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["evidence", "export", "--from", day, "--to", day, "--format", "json",
                                          "--target", "wiki", "--out", str(tmp_path / "out")], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    [export] = (tmp_path / "out").glob("*.json.manifest.json")
    manifest = json.loads(export.read_text())
    records = json.loads(export.with_name(manifest["file"]).read_text())
    assert sorted(r["employee_id"] for r in records) == ["L1", "L2"]
    assert {s["target"] for r in records for s in r["systems"]} == {"wiki"}
    assert manifest["filters"] == {"target": "wiki"}
