"""The audit trail is hash-chained: an edited, a deleted and an inserted record are each found
and named by `provisioner audit verify`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from provisioner.audit.service import append
from provisioner.audit.verify import verify_chain
from provisioner.cli.main import app
from provisioner.db import Database


@pytest.fixture
def audited_db(db: Database) -> Database:
    """Ten chained records, as the service writes them."""
    for n in range(1, 11):
        with db.transaction() as session:
            append(session, "operation.attempt", f"E{n}", op_id=n, outcome="done")
    return db


def verify(db: Database):
    with db.transaction() as session:
        return verify_chain(session)


def test_untouched_chain_verifies(audited_db):
    report = verify(audited_db)
    assert report.ok and report.records == 10


def test_edited_record_is_named(audited_db):
    with audited_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET data = :d WHERE seq = 4"),
                     {"d": json.dumps({"op_id": 4, "outcome": "failed"})})
    report = verify(audited_db)
    assert not report.ok
    assert report.problems == ["record 4 (operation.attempt) edited: its content does not match its hash"]


def test_deleted_record_is_named(audited_db):
    with audited_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 6"))
    report = verify(audited_db)
    assert not report.ok
    assert "record 6 deleted: the chain jumps to record 7" in report.problems[0]


def test_deleted_last_record_is_named(audited_db):
    with audited_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 10"))
    assert verify(audited_db).problems == ["records 10..10 deleted: the chain head is at 10"]


def test_inserted_record_is_named(audited_db):
    with audited_db.engine.begin() as conn:
        row = conn.execute(text("SELECT at, prev_hash FROM audit_records WHERE seq = 5")).one()
        # Make room by moving later records up one, then slip a forged record in at 5.
        for seq in range(10, 4, -1):
            conn.execute(text("UPDATE audit_records SET seq = :n WHERE seq = :o"), {"n": seq + 1, "o": seq})
        conn.execute(text("INSERT INTO audit_records (seq, at, kind, subject, data, prev_hash, hash) "
                          "VALUES (5, :at, 'operation.attempt', 'E99', :d, :p, :h)"),
                     {"at": row.at, "d": json.dumps({"op_id": 99}), "p": row.prev_hash, "h": "0" * 64})
    report = verify(audited_db)
    assert not report.ok
    assert any(p.startswith("record 5 (operation.attempt) edited") for p in report.problems)
    assert any("record 6" in p for p in report.problems)  # the moved original no longer matches


def test_inserted_record_at_the_end_is_named(audited_db):
    with audited_db.engine.begin() as conn:
        last = conn.execute(text("SELECT at, hash FROM audit_records WHERE seq = 10")).one()
        conn.execute(text("INSERT INTO audit_records (seq, at, kind, subject, data, prev_hash, hash) "
                          "VALUES (11, :at, 'lifecycle.transition', 'E1', :d, :p, :h)"),
                     {"at": last.at, "d": json.dumps({}), "p": last.hash, "h": "f" * 64})
    problems = verify(audited_db).problems
    assert "record 11 (lifecycle.transition) edited: its content does not match its hash" in problems
    assert "records 11..11 inserted after the chain head (10)" in problems


def test_cli_verify_exits_nonzero_and_names_the_record(audited_db, monkeypatch):
    from provisioner.settings import get_settings

    monkeypatch.setenv("PROVISIONER_DATABASE_URL", audited_db.url)
    get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "10 audit records, chain intact" in ok.output
    with audited_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET subject = 'E999' WHERE seq = 2"))
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "record 2 (operation.attempt) edited" in bad.output
    get_settings.cache_clear()
