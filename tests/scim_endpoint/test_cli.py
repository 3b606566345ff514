"""``provisioner scim token create|revoke`` (the typer sub-app ``scim_app``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from typer.testing import CliRunner

from provisioner.db import Database
from provisioner.scim.app import mount_scim
from provisioner.scim.cli import scim_app
from provisioner.settings import get_settings
from tests.scim_endpoint.helpers import BASE, assert_error, user_body


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _app(db: Database) -> FastAPI:
    app = FastAPI()
    app.state.db = db
    mount_scim(app)
    return app


def test_token_create_prints_it_once_and_revoke_refuses_it(runner: CliRunner, db: Database) -> None:
    result = runner.invoke(scim_app, ["token", "create", "okta", "--scope", "read-write"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("pvt_")
    app = _app(db)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert client.post(f"{BASE}/Users", json=user_body("cli@example.com")).status_code == 201

    again = runner.invoke(scim_app, ["token", "create", "okta"])
    assert again.exit_code == 2 and "exists" in again.output

    result = runner.invoke(scim_app, ["token", "revoke", "okta"])
    assert result.exit_code == 0, result.output
    assert_error(client.get(f"{BASE}/Users"), 401)
    assert runner.invoke(scim_app, ["token", "revoke", "okta"]).exit_code == 2


def test_read_scope_token_cannot_write(runner: CliRunner, db: Database) -> None:
    result = runner.invoke(scim_app, ["token", "create", "reader", "--scope", "read"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    client = TestClient(_app(db), headers={"Authorization": f"Bearer {token}"})
    assert client.get(f"{BASE}/Users").status_code == 200
    assert_error(client.post(f"{BASE}/Users", json=user_body("x@example.com")), 403)
    bad = runner.invoke(scim_app, ["token", "create", "x", "--scope", "admin"])
    assert bad.exit_code != 0
