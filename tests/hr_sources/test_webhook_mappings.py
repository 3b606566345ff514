"""Webhook mapping files: errors as file:line like the policies (a jmespath syntax error, an
unknown HR attribute, an unknown event type, a secret written in the file...), and the CLI's
'hr-sources check' and 'hr-sources dry-run' on the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.hr_sources.declarations import load_sources
from provisioner.settings import get_settings
from provisioner.targets.config import ConfigError
from tests.hr_sources.webhook_support import EXAMPLES, PAYLOADS, at_documented_time

BROKEN = """\
name: broken
webhook:
  signature:
    scheme: hibob
    secret: the-secret-itself
  employee_id: data.employeeId
  type: type
  type_map:
    employee.left: terminate
    employee.joined: fire
  effective_at: "triggeredAt || [data"
  effective_timezone: Mars/Olympus
  attributes:
    given_name: data.firstName
    shoe_size: data.shoeSize
"""


def test_a_mapping_with_errors_is_refused_with_file_line_messages(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError) as caught:
        load_sources(tmp_path)
    problems = caught.value.problems
    assert f"{path}:5: webhook.signature.secret: never write the secret in the file: name where it is, " \
        "{env: VARIABLE} or {file: /path/to/secret}" in problems
    assert any(p.startswith(f"{path}:10: webhook.type_map.employee.joined: 'fire' is not an event type: one of hire,")
               for p in problems), problems
    assert any(p.startswith(f"{path}:11: webhook.effective_at: not a valid jmespath expression at character ")
               for p in problems), problems
    assert f"{path}:12: webhook.effective_timezone: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin, UTC)" \
        in problems
    assert any(p.startswith(f"{path}:15: webhook.attributes.shoe_size: 'shoe_size' is not an HR attribute: one of ")
               for p in problems), problems
    assert len(problems) == 5, problems


def test_a_generic_hmac_source_must_name_its_header_and_only_it(tmp_path: Path):
    (tmp_path / "acme.yaml").write_text(
        "webhook:\n  signature: {scheme: hmac-sha256, secret: {env: X}}\n  employee_id: id\n"
        "  type: kind\n  effective_at: at\n")
    (tmp_path / "bob.yaml").write_text(
        "webhook:\n  signature: {scheme: hibob, secret: {env: X}, header: X-Sig}\n  employee_id: id\n"
        "  type: kind\n  effective_at: at\n")
    with pytest.raises(ConfigError) as caught:
        load_sources(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path / 'acme.yaml'}:2: webhook.signature: the hmac-sha256 scheme needs 'header': the header the "
        "signature comes in",
        f"{tmp_path / 'bob.yaml'}:2: webhook.signature: 'header' and 'encoding' are fixed by the hibob scheme: "
        "leave them out"]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("PROVISIONER_HR_SOURCES_DIR", str(EXAMPLES))
    monkeypatch.delenv("PROVISIONER_HR_WEBHOOK_SECRET_HIBOB", raising=False)
    monkeypatch.setenv("PROVISIONER_HR_WEBHOOK_SECRET_BAMBOOHR", "a-key")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def test_cli_check_lists_the_shipped_sources_and_their_ways_in(cli):
    result = cli("hr-sources", "check", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"source": "bamboohr", "ways_in": ["webhook: POST /hr/webhooks/bamboohr (bamboohr)"],
         "webhook_secret": "readable"},
        {"source": "hibob", "ways_in": ["webhook: POST /hr/webhooks/hibob (hibob)"],
         "webhook_secret": "missing: environment variable PROVISIONER_HR_WEBHOOK_SECRET_HIBOB is not set"}]
    table = cli("hr-sources", "check")
    assert table.exit_code == 0 and "ok: 2 HR source(s)" in table.output


def test_cli_check_prints_file_line_errors_and_exits_1(cli, tmp_path: Path):
    (tmp_path / "broken.yaml").write_text(BROKEN)
    result = cli("hr-sources", "check", "--dir", str(tmp_path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith(f"{tmp_path / 'broken.yaml'}:") for line in lines), lines
    assert any(":15: webhook.attributes.shoe_size:" in line for line in lines)


def test_cli_dry_run_shows_the_events_and_stores_nothing(cli, tmp_path: Path):
    at_documented_time()
    result = cli("hr-sources", "dry-run", "bamboohr", str(PAYLOADS / "bamboohr_field_based_updated.json"))
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    [event] = shown["events"]
    assert event["event_id"].startswith("bamboohr:")
    assert {k: event[k] for k in ("type", "employee_id", "effective_at", "attributes")} == {
        "type": "update", "employee_id": "12345", "effective_at": "2026-01-31T18:42:00Z",
        "attributes": {"given_name": "Bryony"}}
    ignored = cli("hr-sources", "dry-run", "hibob", str(PAYLOADS / "hibob_v2_table_entry_created.json"))
    assert ignored.exit_code == 0
    assert json.loads(ignored.output)["ignored"] == [
        {"record": 0, "reason": "type 'table.entry.created' is mapped to 'ignore'"}]
    assert not (tmp_path / "unused.db").exists()  # nothing stored, not even a database opened


def test_cli_dry_run_names_the_bad_field_and_exits_1(cli, tmp_path: Path):
    at_documented_time()
    data = json.loads((PAYLOADS / "bamboohr_field_based_created.json").read_text())
    data["employees"][0]["fields"]["Hire Date"] = "next monday"
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(data))
    result = cli("hr-sources", "dry-run", "bamboohr", str(sample))
    assert result.exit_code == 1
    assert result.output.startswith(f"{sample}: records[0].attributes.start_date: ")
    unknown = cli("hr-sources", "dry-run", "personio", str(sample))
    assert unknown.exit_code == 2
    assert "no HR source 'personio' with a webhook section (those with one: bamboohr, hibob)" in unknown.output


def test_numeric_status_codes_map_to_event_types(tmp_path: Path):
    """A value map of status codes (numbers in the YAML and in the payload), records from a list."""
    from provisioner.hr_sources.webhooks.mapping import apply

    (tmp_path / "legacy.yaml").write_text(
        "webhook:\n  signature: {scheme: hmac-sha256, header: X-Sig, secret: {env: LEGACY_SECRET}}\n"
        "  records: changes[?kind == 'person']\n  employee_id: pid\n  type: status\n"
        "  type_map: {1: hire, 3: terminate, \"9\": ignore}\n  effective_at: day\n"
        "  effective_timezone: Asia/Tokyo\n"
        "  attributes:\n    given_name: names[0]\n    family_name: names[1]\n")
    mapping = load_sources(tmp_path)["legacy"].webhook
    mapped = apply(mapping, "legacy", {"changes": [
        {"kind": "person", "pid": 7, "status": 1, "day": "2026-04-01", "names": ["Taro", "Yamada"]},
        {"kind": "site", "pid": 8, "status": 1, "day": "2026-04-01"},
        {"kind": "person", "pid": 7, "status": 3, "day": "2026-09-30"},
        {"kind": "person", "pid": 9, "status": 9, "day": "2026-09-30"},
        {"kind": "person", "pid": 9, "status": 5, "day": "2026-09-30"}]}, window=None)
    assert [(e.type.value, e.employee_id, e.effective_at.isoformat()) for e in mapped.events] == [
        ("hire", "7", "2026-04-01T00:00:00+09:00"), ("terminate", "7", "2026-09-30T00:00:00+09:00")]
    assert mapped.events[0].attributes.given_name == "Taro"
    assert [(i.record, i.reason) for i in mapped.ignored] == [
        (2, "type 9 is mapped to 'ignore'"), (3, "type 5 is not in the source's type_map")]
