"""Shared fixtures: a migrated database on SQLite and, when a server is given, on PostgreSQL.

Set ``PROVISIONER_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``) and
every test that takes ``db`` runs on both engines. Each pytest run creates its own PostgreSQL
database and drops it afterwards, so parallel runs never share state.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from provisioner.audit.service import GENESIS
from provisioner.bench.common import temporary_postgres_database
from provisioner.clock import clock
from provisioner.db import Database
from provisioner.demo.harness import SandboxedService
from provisioner.migrations import upgrade
from provisioner.models import Base
from tests.support import EntraView

PG_URL = os.environ.get("PROVISIONER_TEST_POSTGRES_URL")
ENGINES = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head; each test gets a copy (faster than migrating again)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    with temporary_postgres_database(PG_URL, prefix="provisioner_test") as url:
        upgrade(url)
        yield url


def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": GENESIS})


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A URL of an empty, migrated database: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        path = tmp_path / "provisioner.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    db = Database(url)
    _truncate_all(db)
    db.dispose()
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[SandboxedService]:
    """The whole service (API, processor, worker, msgraph-sdk connector) wired to a fresh
    in-process Graph sandbox, with fast back-off for tests."""
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                     "max_attempts": 4})
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def entra(service: SandboxedService) -> EntraView:
    """What the Graph sandbox actually holds for each person."""
    return EntraView(service)
