"""Mass-change thresholds: the settings' defaults, a target file's ``holds:`` override, and a
wrong cause in a target file named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.change_control.holds.service import Threshold, cause_of, hold_policy
from provisioner.settings import Settings
from provisioner.targets.config import ConfigError, load_targets

ENTRA = """kind: entra
name: entra
auth: {method: static_token, token: {env: X}}
accounts: {domain: example.com}
"""


def test_defaults_overrides_and_causes(tmp_path: Path):
    (tmp_path / "entra.yaml").write_text(ENTRA + "holds:\n  snapshot_import: {count: 5, share: 0.01}\n")
    policy = hold_policy(Settings(), load_targets(tmp_path))
    assert policy.limit("entra", "snapshot_import") == Threshold(5, 0.01)
    assert policy.limit("entra", "hr_termination") == Threshold(50, 0.05)
    assert policy.limit("wiki", "snapshot_import") == Threshold(10, 0.02)
    assert policy.limit("entra", "policy_rollout_reviewed") is None
    assert not Threshold(50, 0.05).crosses(50, 100)  # the count is not exceeded
    assert not Threshold(50, 0.05).crosses(900, 20_000)  # 4.5%: the share is not exceeded
    assert Threshold(50, 0.05).crosses(1_001, 20_000)
    assert [cause_of(t) for t in ("event:snapshot-abc-E1", "event:h1", "policy:0123", "reconcile", "scim",
                                  "worker:converge")] == ["snapshot_import", "hr_termination", "policy_rollout",
                                                          "reconcile_fix", "scim", None]


def test_a_wrong_cause_is_named_with_file_and_line(tmp_path: Path):
    (tmp_path / "entra.yaml").write_text(ENTRA + "holds:\n  snapshots: {count: 5, share: 0.01}\n")
    with pytest.raises(ConfigError) as err:
        load_targets(tmp_path)
    assert "entra.yaml" in err.value.problems[0] and "holds" in err.value.problems[0]
