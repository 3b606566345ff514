"""The ``provisioner`` command pointed at the running test service's database, policies and targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import Result
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.settings import get_settings


@pytest.fixture
def cli(service, monkeypatch) -> Iterator[Callable[..., Result]]:
    """``cli("events", "list", "--rejected")``: the real command against the service's database."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()
