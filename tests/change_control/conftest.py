"""The whole service with change control configured: the Graph sandbox's Finance group is
sensitive (target file), the engineering policy's wiki grant needs approval (policy file), and a
separation-of-duties rule forbids holding Sales and Managers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from provisioner.demo.harness import REPO, SandboxedService
from provisioner.settings import get_settings
from provisioner.tokens.service import create_token
from tests.support import EntraView
from tests.targets.scim_helpers import WikiView, scim_service

SOD = {"name": "sales-vs-managers",
       "conflicts": [{"name": "sell-and-approve", "description": "a seller never approves their own deals",
                      "groups": [{"target": "entra", "group": "Sales"}, {"target": "entra", "group": "Managers"}]}]}


def change_control_config(folder: Path) -> tuple[Path, Path]:
    policies, targets = folder / "policies", folder / "targets-src"
    policies.mkdir(parents=True)
    targets.mkdir(parents=True)
    for path in (REPO / "policies").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if data["name"] == "engineering":
            data["grants"]["wiki"]["approval"] = "required"
        (policies / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    (policies / "sod.yaml").write_text(yaml.safe_dump(SOD, sort_keys=False))
    for path in (REPO / "targets").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for group in data.get("managed_groups", []):
            if group["name"] == "Finance":
                group["approval"] = "required"
        (targets / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return policies, targets


@pytest.fixture
async def cc(database_url: str, tmp_path: Path) -> AsyncIterator[SandboxedService]:
    policies, targets = change_control_config(tmp_path / "config")
    svc, _log = scim_service(tmp_path, database_url, policies_dir=policies, targets_dir=targets)
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def tokens(cc: SandboxedService) -> dict[str, dict[str, str]]:
    """Authorization headers per role: two approvers, an admin, an auditor, a viewer."""
    out = {}
    with cc.db.transaction() as session:
        for name, scope in (("alice", "approver"), ("bob", "approver"), ("root", "admin"),
                            ("audit", "auditor"), ("look", "viewer")):
            out[name] = {"Authorization": f"Bearer {create_token(session, name, {scope})}"}
    return out


@pytest.fixture
def cli_env(cc: SandboxedService, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", cc.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(cc.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(cc.settings.targets_dir))
    get_settings.cache_clear()
    yield cc
    get_settings.cache_clear()


@pytest.fixture
def graph(cc: SandboxedService) -> EntraView:
    return EntraView(cc)


@pytest.fixture
def wiki(cc: SandboxedService) -> WikiView:
    return WikiView(cc)
