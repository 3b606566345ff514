"""Every error under /scim/v2 is a SCIM Error (RFC 7644 §3.12); nothing leaks to the parent app."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.testclient import TestClient

from provisioner.db import Database
from provisioner.scim import repository
from provisioner.scim.app import mount_scim
from tests.scim_endpoint.helpers import BASE, Scim, assert_error, create_user


def test_unexpected_exception_is_a_scim_500_without_details(
    scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create_user(scim.client, "boom@example.com")

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(repository, "get_user", explode)
    client = TestClient(scim.app, raise_server_exceptions=False, headers=scim.client.headers)
    body = assert_error(client.get(f"{BASE}/Users/{user['id']}"), 500)
    assert "secret" not in body.get("detail", "")


def test_parent_problem_handlers_are_left_alone(db: Database) -> None:
    app = FastAPI()
    app.state.db = db

    @app.exception_handler(HTTPException)
    async def problem(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"title": "problem"}, status_code=exc.status_code, media_type="application/problem+json"
        )

    mount_scim(app)
    client = TestClient(app)
    outside = client.get("/nope")
    assert outside.headers["content-type"] == "application/problem+json"
    inside = client.get(f"{BASE}/nope")
    assert_error(inside, 404)
    assert_error(client.get(f"{BASE}/Users"), 401)
