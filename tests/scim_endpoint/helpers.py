"""Helpers of the SCIM endpoint tests: constants, seeds and request builders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.directory.models import DirectoryGroup, DirectoryGroupMember
from provisioner.identities.models import Identity

BASE = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class HookRecorder:
    """Stands for the owner's ``on_identity_changed``."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, session: Session, identity_id: str, source: str) -> None:
        assert isinstance(session, Session)
        self.calls.append((identity_id, source))

    def ids(self) -> set[str]:
        return {identity_id for identity_id, _ in self.calls}


@dataclass
class Scim:
    app: FastAPI
    db: Database
    client: TestClient
    hook: HookRecorder
    tokens: dict[str, str]

    def as_token(self, token: str | None) -> TestClient:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return TestClient(self.app, headers=headers)


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **extra}


def create_user(client: TestClient, user_name: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/Users", json=user_body(user_name, **extra))
    assert response.status_code == 201, response.text
    return response.json()


def create_group(
    client: TestClient, name: str, members: Sequence[str] = (), **extra: Any
) -> dict[str, Any]:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name, **extra}
    if members:
        body["members"] = [{"value": member} for member in members]
    response = client.post(f"{BASE}/Groups", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def assert_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """A SCIM Error body (RFC 7644 §3.12): the schema, status as a string, scimType."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def seed_hr_identity(db: Database, **fields: Any) -> str:
    """An identity as HR intake creates it (source "hr")."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": "hr",
        "state": "active",
        "active": True,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "extra": {},
        "start_date": date(2024, 1, 1),
    }
    values.update(fields)
    with db.transaction() as session:
        session.add(Identity(**values))
    return values["id"]


def seed_policy_group(db: Database, name: str, members: Sequence[str] = ()) -> str:
    """A group the planner keeps in step with policies (source "policy")."""
    now = utcnow()
    group_id = str(uuid.uuid4())
    with db.transaction() as session:
        session.add(
            DirectoryGroup(
                id=group_id,
                display_name=name,
                source="policy",
                target="entra",
                group_key=name,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        for member in members:
            session.add(DirectoryGroupMember(group_id=group_id, identity_id=member))
    return group_id


def ids(response: Any) -> set[str]:
    return {resource["id"] for resource in response.json().get("Resources", [])}
