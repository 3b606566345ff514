"""Fixtures of the SCIM endpoint tests: an app built for the test and clients with tokens.

Every test taking ``db`` runs on SQLite and, with PROVISIONER_TEST_POSTGRES_URL, PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from provisioner.db import Database
from provisioner.scim.app import mount_scim
from provisioner.tokens.service import create_token
from tests.scim_endpoint.helpers import HookRecorder, Scim


def _token(db: Database, name: str, scopes: set[str]) -> str:
    with db.transaction() as session:
        return create_token(session, name, scopes)


@pytest.fixture
def scim(db: Database) -> Iterator[Scim]:
    app = FastAPI()
    app.state.db = db
    mount_scim(app)
    hook = HookRecorder()
    app.state.on_identity_changed = hook  # set after mounting: the sub-app shares app.state
    tokens = {
        "rw": _token(db, "test-rw", {"scim:read", "scim:write"}),
        "ro": _token(db, "test-ro", {"scim:read"}),
    }
    client = TestClient(app, headers={"Authorization": f"Bearer {tokens['rw']}"})
    yield Scim(app=app, db=db, client=client, hook=hook, tokens=tokens)
    client.close()


@pytest.fixture
def client(scim: Scim) -> TestClient:
    return scim.client
