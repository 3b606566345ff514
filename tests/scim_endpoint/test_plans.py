"""The lookups provisioning clients make run on indexes (migration 0003 and the models), on both
engines: a full scan of 100,000 identities per request is what the endpoint must not do."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.scim import repository as repo
from provisioner.scim.filters import compile_filter


def _plan(db: Database, filter_text: str) -> str:
    condition = compile_filter(repo.USER_FILTERS, filter_text, db.dialect)
    stmt = select(Identity.id).where(Identity.user_name.is_not(None), condition).limit(100)
    with db.engine.connect() as conn:
        compiled = stmt.compile(conn, compile_kwargs={"literal_binds": True})
        if db.dialect == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # tiny tables: force the choice
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").all()
        else:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("filter_text", "index"),
    [
        ('userName eq "Alice@Example.com"', "ix_identities_user_name_lower"),
        ('externalId eq "ext-1"', "ix_identities_external_id"),
        ('emails[type eq "work"].value eq "a@example.com"', "ix_identities_email_lower"),
    ],
)
def test_lookups_use_an_index(db: Database, filter_text: str, index: str) -> None:
    plan = _plan(db, filter_text)
    assert index in plan, plan


def test_user_name_sw_is_an_index_range(db: Database) -> None:
    plan = _plan(db, 'userName sw "user00012"')
    wanted = (
        "ix_identities_user_name_lower_pattern"
        if db.dialect == "postgresql"
        else "ix_identities_user_name_lower"
    )
    assert wanted in plan, plan
