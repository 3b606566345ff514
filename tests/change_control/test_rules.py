"""Declaring change control: conflicts and approval flags are validated with file:line, and
`policy check` names the people who hold a conflict declared after they got both groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.policies.loader import load_policies
from provisioner.rollouts.fingerprint import fingerprint
from provisioner.settings import get_settings
from provisioner.targets.config import ConfigError, load_targets
from tests.change_control.conftest import SOD, change_control_config
from tests.support import hire

REPO = Path(__file__).resolve().parents[2]


def test_a_conflict_naming_an_unmanaged_group_is_refused_with_its_line(tmp_path: Path):
    policies, targets_src = change_control_config(tmp_path)
    bad = {**SOD, "conflicts": [{"name": "x", "groups": [{"target": "entra", "group": "Sales"},
                                                        {"target": "entra", "group": "Payroll"}]}]}
    (policies / "sod.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    with pytest.raises(ConfigError) as exc:
        load_policies(policies, load_targets(targets_src))
    assert exc.value.problems == [f"{policies / 'sod.yaml'}:7: conflicts.0.groups: 'Payroll' is not a managed "
                                  "group of target 'entra'; declare it in its targets/ file"]
    (policies / "sod.yaml").write_text(yaml.safe_dump({"name": "only-name"}))
    with pytest.raises(ConfigError, match="give 'grants'"):
        load_policies(policies, load_targets(targets_src))


def test_fingerprint_moves_with_conflicts_only(tmp_path: Path):
    targets = load_targets(REPO / "targets")
    shipped = load_policies(REPO / "policies", targets)
    policies, _ = change_control_config(tmp_path)
    declared = load_policies(policies, targets)
    assert fingerprint(shipped, targets) != fingerprint(declared, targets)
    (policies / "sod.yaml").unlink()
    assert fingerprint(shipped, targets) == fingerprint(load_policies(policies, targets), targets)


async def test_policy_check_names_people_holding_a_conflict(service, entra, tmp_path: Path, monkeypatch):
    await service.send(hire("h-s2", "S2", "Sue", "Boss", "Sales", job_code="MGR1"))
    await service.drain()
    assert {"Sales", "Managers"} <= entra.groups("S2")  # before any rule
    runner = CliRunner()
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(REPO / "policies"))
    get_settings.cache_clear()
    clean = runner.invoke(app, ["policy", "check"], catch_exceptions=False)
    assert clean.exit_code == 0 and "S2" not in clean.output
    policies, _ = change_control_config(tmp_path / "cc")
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(policies))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["policy", "check"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "S2" in result.output and "sell-and-approve" in result.output and "without an exception" in result.output
