"""The lookups provisioning clients make run on indexes (migration 0003 and the models), on both
engines: a full scan of 100,000 identities per request is what the endpoint must not do."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.scim import repository as repo
from provisioner.scim.filters import compile_filter
from provisioner.scim.hot.statements import Lookup, reader_of, statement


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


_HOT_INDEXES = {
    Lookup.user_name_eq: ("ix_identities_user_name_lower",),
    Lookup.external_id_eq: ("ix_identities_external_id",),
    Lookup.id: ("identities_pkey", "sqlite_autoindex_identities_1"),
}


def _hot_plan(db: Database, lookup: Lookup, values: tuple[str, ...]) -> str:
    """The plan of a hot-path statement, as its held connection runs it (on PostgreSQL: a
    prepared statement with a generic plan, the values unknown to the planner)."""
    sql = statement(lookup, db.dialect)
    params = ("digest", *values, 100)
    with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            return "\n".join(str(row[-1]) for row in rows)
        numbered = sql
        for number in range(1, len(params) + 1):
            numbered = numbered.replace("%s", f"${number}", 1)
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE hot_plan AS {numbered}")
        arguments = ", ".join(
            str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
            for value in params
        )
        arguments = arguments.replace("%", "%%")  # the driver's placeholders
        rows = conn.exec_driver_sql(f"EXPLAIN EXECUTE hot_plan({arguments})").all()
        conn.exec_driver_sql("DEALLOCATE hot_plan")
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("lookup", list(_HOT_INDEXES))
def test_hot_path_lookups_use_an_index(db: Database, lookup: Lookup) -> None:
    plan = _hot_plan(db, lookup, ("Alice@Example.com",))
    assert any(index in plan for index in _HOT_INDEXES[lookup]), plan


def test_hot_path_sw_is_an_index_range_even_in_a_generic_plan(db: Database) -> None:
    reader = reader_of(db)
    if db.dialect == "postgresql":  # the lookup is known once a connection has checked lower()
        reader.read("digest", Lookup.user_name_eq, ("nobody",), 1)
    found = reader.starts_with("User00012")
    assert found is not None
    lookup, values = found
    plan = _hot_plan(db, lookup, values)
    wanted = (
        "ix_identities_user_name_lower_pattern"
        if db.dialect == "postgresql"
        else "ix_identities_user_name_lower"
    )
    assert wanted in plan, plan
    assert "Seq Scan" not in plan and "identities_pkey" not in plan.split("directory")[0], plan
