"""The bulk upload tests' fixtures: an HR source declared with a bulk_upload section, the whole
service reading it, a token, the CLI on the same service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from provisioner.cli.main import app
from provisioner.demo.harness import SandboxedService
from provisioner.settings import get_settings
from provisioner.tokens.service import create_token, hr_source_scope
from tests.hr_sources.bulk.bulk_requests import SOURCE
from tests.support import EntraView


@pytest.fixture
async def bulk_service(database_url: str, tmp_path: Path) -> AsyncIterator[SandboxedService]:
    """The service with ``hr_sources/entra-inbound.yaml`` (bulk_upload, a custom attribute mapped)."""
    sources = tmp_path / "hr_sources"
    sources.mkdir()
    (sources / f"{SOURCE}.yaml").write_text(
        "description: Entra API-driven inbound provisioning\n"
        "bulk_upload:\n"
        "  attributes:\n"
        "    employment_type: 'urn:contoso:employee:WorkerType | userType'\n"
        "    location: 'urn:contoso:employee:Site'\n")
    (sources / "other.yaml").write_text("bulk_upload: {}\n")
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={"hr_sources_dir": sources, "backoff_base_seconds": 0.01,
                                     "backoff_max_seconds": 0.05, "max_attempts": 4})
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def bulk_token(bulk_service: SandboxedService) -> str:
    with bulk_service.db.transaction() as session:
        return create_token(session, "entra-inbound-1", {hr_source_scope(SOURCE)})


@pytest.fixture
def entra_bulk(bulk_service: SandboxedService) -> EntraView:
    return EntraView(bulk_service)


@pytest.fixture
def hr_cli(bulk_service: SandboxedService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """``hr_cli("hr-sources", "token", "issue", SOURCE)``: the real command on the service's database."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", bulk_service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_HR_SOURCES_DIR", str(bulk_service.settings.hr_sources_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()
