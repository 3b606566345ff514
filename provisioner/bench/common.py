"""Helpers shared by the benchmarks (and the test fixtures)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# The benchmarks measure how fast the service carries out mass changes an operator has already
# approved (a company's leavers, a rollout to everyone, a reconcile of a wiped group): the
# change-control brakes (tested in tests/change_control) are off there.
NO_BRAKES: dict[str, object] = {"policy_rollout_max_auto": None, **{
    f"hold_{cause}_count": 10**9 for cause in ("hr_termination", "snapshot_import", "policy_rollout",
                                               "reconcile_fix", "scim")}}
NO_BRAKES_ENV = {f"PROVISIONER_{name.upper()}": "" if value is None else str(value) for name, value in NO_BRAKES.items()}


@contextmanager
def temporary_postgres_database(server_url: str, prefix: str = "provisioner_bench") -> Iterator[str]:
    """A fresh database on the given PostgreSQL server, dropped afterwards; yields its URL."""
    server = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
