"""A sandboxed service with low mass-change thresholds and a policy rollout limit, API tokens of
every change-control role, and the ``provisioner`` command on the service's database."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from provisioner.audit.models import AuditRecord
from provisioner.cli.main import app
from provisioner.demo.harness import REPO, SandboxedService
from provisioner.settings import get_settings
from provisioner.tokens.service import create_token

# Ten people: three of them leaving is 30% (more than 20%) and more than 2 people.
LOW = {"hold_snapshot_import_count": 2, "hold_snapshot_import_share": 0.2,
       "hold_hr_termination_count": 3, "hold_hr_termination_share": 0.2,
       "hold_reconcile_fix_count": 2, "hold_reconcile_fix_share": 0.2,
       "hold_scim_count": 2, "hold_scim_share": 0.2, "policy_rollout_max_auto": 2}


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "policies", folder)
    return folder


@pytest.fixture
async def svc(database_url: str, tmp_path: Path, policies: Path) -> AsyncIterator[SandboxedService]:
    service = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, policies_dir=policies,
                               settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                         "max_attempts": 4, **LOW})
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def tokens(svc: SandboxedService) -> dict[str, dict[str, str]]:
    """Authorization headers per role: approver, viewer, auditor."""
    out = {}
    with svc.db.transaction() as session:
        for role in ("approver", "viewer", "auditor"):
            out[role] = {"Authorization": f"Bearer {create_token(session, f'{role}-1', {role})}"}
    return out


@pytest.fixture
def cli(svc: SandboxedService, monkeypatch) -> Iterator[Callable[..., Result]]:
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(svc.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(svc.settings.targets_dir))
    for name, value in LOW.items():
        monkeypatch.setenv(f"PROVISIONER_{name.upper()}", str(value))
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def audit(svc: SandboxedService, prefix: str) -> list[dict[str, Any]]:
    """The audit records of a kind (or kinds starting with ``prefix``), oldest first."""
    with svc.db.read() as session:
        return [{"kind": r.kind, **r.data} for r in session.scalars(
            select(AuditRecord).where(AuditRecord.kind.startswith(prefix)).order_by(AuditRecord.seq))]
