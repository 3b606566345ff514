"""Setting up the SCIM benchmark: a scratch database seeded with identities, the endpoint and
the scim2-server peer served on free loopback ports, and the peer's users."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, insert, select, text

from provisioner.bench.common import temporary_postgres_database
from provisioner.db import Database, is_sqlite
from provisioner.identities.models import Identity
from provisioner.migrations import upgrade
from provisioner.sandbox.ports import free_port

_DB_ENV = "PROVISIONER_BENCH_DATABASE_URL"
_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


# -- database ------------------------------------------------------------------------------


@contextmanager
def scratch_database(database_url: str | None) -> Iterator[str]:
    if database_url is None:
        directory = tempfile.mkdtemp(prefix="scim-bench-")
        try:
            url = f"sqlite:///{directory}/bench.db"
            upgrade(url)
            yield url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if is_sqlite(database_url):
        upgrade(database_url)
        engine = create_engine(database_url)
        with engine.connect() as conn:
            count = conn.scalar(select(func.count()).select_from(Identity.__table__))
        engine.dispose()
        if count:
            raise RuntimeError(
                f"{database_url} already holds {count} identities; give an empty file"
            )
        yield database_url
        return
    with temporary_postgres_database(database_url) as url:
        upgrade(url)
        yield url


def user_name(i: int) -> str:
    return f"user{i:07d}@bench.example.com"


def seed_identities(db: Database, count: int) -> float:
    """Bulk INSERT identities as HR intake would hold them."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    departments = ["Sales", "R&D", "Finance", "Support", "Marketing"]
    chunk = 10_000
    with db.engine.begin() as conn:
        for first in range(0, count, chunk):
            rows = [
                {
                    "id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
                    "source": "hr",
                    "employee_id": f"E{i:07d}",
                    "state": "active",
                    "user_name": user_name(i),
                    "given_name": f"Given{i}",
                    "family_name": f"Family{i}",
                    "display_name": f"Given{i} Family{i}",
                    "email": user_name(i),
                    "department": departments[i % len(departments)],
                    "title": "Engineer",
                    "employment_type": "full_time",
                    "extra": {},
                    "active": True,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(first, min(first + chunk, count))
            ]
            conn.execute(insert(Identity.__table__), rows)
    # Settle the bulk load before measuring: statistics, visibility map and a checkpoint, so
    # the first scenario does not pay for the seeding's background work.
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE identities"))
            with suppress(Exception):  # CHECKPOINT needs a superuser or pg_checkpoint
                conn.execute(text("CHECKPOINT"))
    else:
        raw = db.engine.raw_connection()  # autocommit: no BEGIN IMMEDIATE around these
        try:
            cursor = raw.cursor()
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
    return time.perf_counter() - started


def sample_ids(db: Database, count: int) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(Identity.id).limit(count)))


# -- servers -------------------------------------------------------------------------------


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        with suppress(httpx.HTTPError):
            httpx.get(url, timeout=1.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not start within {timeout:g}s")


@contextmanager
def running_process(command: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(  # fixed commands, loopback only
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def serve_endpoint(database_url: str, workers: int) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, **{_DB_ENV: database_url})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "provisioner.bench.scim_endpoint:bench_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        str(max(1, workers)),
    ]
    base = f"http://127.0.0.1:{port}/scim/v2"
    with running_process(command, env, f"{base}/ServiceProviderConfig"):
        yield base


@contextmanager
def serve_peer(token: str) -> Iterator[str]:
    port = free_port()
    executable = shutil.which("scim2-server") or str(Path(sys.executable).parent / "scim2-server")
    command = [executable, "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", token]
    base = f"http://127.0.0.1:{port}/v2"
    with running_process(command, dict(os.environ), f"{base}/ServiceProviderConfig"):
        yield base


def seed_peer(peer: httpx.Client, count: int) -> list[str]:
    """Seed scim2-server with POST /Bulk (500 creations a request), POST /Users as fallback."""
    ids: list[str] = []
    batch = 500
    for first in range(0, count, batch):
        last = min(first + batch, count)
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": str(i), "data": peer_user(i)}
                for i in range(first, last)
            ],
        }
        response = peer.post("/Bulk", json=body)
        if response.status_code == 200:
            for op in response.json().get("Operations", []):
                if str(op.get("status")) == "201":
                    ids.append(str(op["location"]).rsplit("/", 1)[1])
            continue
        for i in range(first, last):  # no Bulk: one POST each
            created = peer.post("/Users", json=peer_user(i))
            created.raise_for_status()
            ids.append(created.json()["id"])
    return ids


def peer_user(i: int) -> dict[str, Any]:
    return {
        "schemas": [_USER_SCHEMA],
        "userName": user_name(i),
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "displayName": f"Given{i} Family{i}",
        "emails": [{"value": user_name(i), "type": "work", "primary": True}],
        "title": "Engineer",
        "active": True,
    }
