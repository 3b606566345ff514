"""Audit anchoring: deleting the newest records and rewinding the head, or deleting every record,
leaves a database that agrees with itself; only the key's seal on the head and an anchor kept
outside the database (an evidence manifest, the periodic log line) find it. A chain written with
a key and checked without it says so plainly."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from provisioner.audit.service import GENESIS, append
from provisioner.cli.main import app
from provisioner.db import Database
from provisioner.settings import get_settings
from tests.support import hire

runner = CliRunner()
KEY = "audit-key-for-tests"


@pytest.fixture
def cli_db(db: Database, monkeypatch):
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", db.url)
    monkeypatch.delenv("PROVISIONER_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def write(db: Database, first: int, last: int) -> None:
    for n in range(first, last + 1):
        with db.transaction() as session:
            append(session, "operation.attempt", f"E{n}", op_id=n, outcome="done")


def head(db: Database) -> str:
    with db.engine.begin() as conn:
        row = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    return f"{row.seq}:{row.hash}"


def truncate_to(db: Database, seq: int, *, keep_seal: bool = True) -> None:
    """What someone with database access does: delete the newest records and rewind the head to
    the last record left, so the chain is consistent again."""
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq > :s"), {"s": seq})
        last = conn.execute(text("SELECT hash FROM audit_records WHERE seq = :s"), {"s": seq}).scalar()
        sets = "seq = :s, hash = :h" + ("" if keep_seal else ", key_id = NULL, mac = NULL")
        conn.execute(text(f"UPDATE audit_head SET {sets} WHERE id = 1"), {"s": seq, "h": last or GENESIS})


def verify(*args: str):
    return runner.invoke(app, ["audit", "verify", *args], catch_exceptions=False)


def test_truncation_passes_alone_and_is_found_with_the_anchor(cli_db):
    write(cli_db, 1, 10)
    anchor = head(cli_db)
    write(cli_db, 11, 12)
    truncate_to(cli_db, 7)
    alone = verify()
    assert alone.exit_code == 0, alone.output  # the database agrees with itself: why anchors exist
    assert "7 audit records, chain intact" in alone.output
    found = verify("--anchor", anchor)
    assert found.exit_code == 1, found.output
    assert "records 8..10 deleted: the anchor 10:" in found.output
    assert "names record 10, but the chain ends at record 7" in found.output


def test_an_anchor_that_was_rewritten_is_named(cli_db):
    write(cli_db, 1, 5)
    anchor = head(cli_db)
    with cli_db.engine.begin() as conn:  # re-forge record 5 and the head (possible without a key)
        conn.execute(text("UPDATE audit_records SET hash = :h WHERE seq = 5"), {"h": "a" * 64})
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": "a" * 64})
    found = verify("--anchor", anchor)
    assert found.exit_code == 1
    assert "record 5 does not match the anchor 5:" in found.output


def test_full_deletion_is_found_with_the_anchor(cli_db):
    write(cli_db, 1, 6)
    anchor = head(cli_db)
    truncate_to(cli_db, 0, keep_seal=False)
    assert verify().exit_code == 0  # an empty chain is a consistent chain
    found = verify("--anchor", anchor)
    assert found.exit_code == 1
    assert "records 1..6 deleted: the anchor 6:" in found.output and "the chain is empty" in found.output


def test_a_bad_anchor_is_one_line_saying_what_is_expected(cli_db, tmp_path: Path):
    bad = verify("--anchor", "12:nothex")
    assert bad.exit_code == 2 and "neither SEQ:HASH" in bad.output
    (tmp_path / "m.json").write_text(json.dumps({"sha256": "x"}))
    old = verify("--anchor", str(tmp_path / "m.json"))
    assert old.exit_code == 2 and "carries no audit_head" in old.output


def test_a_missing_key_is_said_plainly(cli_db, monkeypatch):
    monkeypatch.setenv("PROVISIONER_AUDIT_KEY", KEY)
    write(cli_db, 1, 5)
    assert verify().exit_code == 0
    monkeypatch.delenv("PROVISIONER_AUDIT_KEY")
    result = verify()
    assert result.exit_code == 2, result.output
    assert "PROVISIONER_AUDIT_KEY is not set but the chain was written with a key" in result.output
    assert "edited" not in result.output
    # The wrong key is named as such too, not as five edited records.
    monkeypatch.setenv("PROVISIONER_AUDIT_KEY", "another key")
    wrong = verify()
    assert wrong.exit_code == 2
    assert "is not the key the chain was written with" in wrong.output and "edited" not in wrong.output
    # Without the key the links and anchors are still checked.
    monkeypatch.delenv("PROVISIONER_AUDIT_KEY")
    anchor = head(cli_db)
    truncate_to(cli_db, 3)
    both = verify("--anchor", anchor)
    assert both.exit_code == 1
    assert "records 4..5 deleted" in both.output and "PROVISIONER_AUDIT_KEY is not set" in both.output


def test_head_rewound_with_the_key_is_found_without_an_anchor(cli_db, monkeypatch):
    monkeypatch.setenv("PROVISIONER_AUDIT_KEY", KEY)
    write(cli_db, 1, 10)
    assert verify().exit_code == 0
    truncate_to(cli_db, 8)  # the seal of head 10 stays: it does not fit head 8
    result = verify()
    assert result.exit_code == 1
    assert "the chain head (8) does not carry the key's seal" in result.output


def test_head_unsealed_with_the_key_is_found(cli_db, monkeypatch):
    monkeypatch.setenv("PROVISIONER_AUDIT_KEY", KEY)
    write(cli_db, 1, 4)
    truncate_to(cli_db, 2, keep_seal=False)  # the key id and seal cleared as well
    result = verify()
    assert result.exit_code == 1
    assert "the chain head (2) is not sealed, though PROVISIONER_AUDIT_KEY is set" in result.output


async def test_the_evidence_manifest_and_the_log_line_carry_the_head(service, tmp_path: Path, monkeypatch,
                                                                     caplog):
    """Through the service: the audit trail written by real work, the anchor taken from an evidence
    export's manifest (CLI) and the API's, and from the periodic log line of the running workers."""
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    get_settings.cache_clear()
    try:
        await service.send([hire("an-1", "AN1", "Ann", "Chor", "Finance"),
                            hire("an-2", "AN2", "Ben", "Chmark", "Sales")])
        await service.drain()
        exported = runner.invoke(app, ["evidence", "export", "--from", "2020-01-01", "--to", "2099-12-31",
                                       "--out", str(tmp_path)], catch_exceptions=False)
        assert exported.exit_code == 0, exported.output
        [manifest_file] = tmp_path.glob("*.manifest.json")
        manifest = json.loads(manifest_file.read_text())
        assert f"{manifest['audit_head']['seq']}:{manifest['audit_head']['hash']}" == head(service.db)
        assert manifest["audit_head"]["seq"] > 2
        token = runner.invoke(app, ["token", "create", "auditor-an", "--scope", "auditor"]).output.strip()
        api = await service.api.get("/evidence/revocations", params={"from": "2020-01-01", "to": "2099-12-31"},
                                    headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 200, api.text
        anchored = head(service.db)  # the token's creation is audited too
        api_head = api.json()["manifest"]["audit_head"]
        assert f"{api_head['seq']}:{api_head['hash']}" == anchored

        caplog.set_level(logging.INFO, logger="provisioner.audit")
        service.runtime.settings.audit_anchor_minutes = 0.01
        stop = asyncio.Event()
        background = asyncio.create_task(service.runtime.run_background(stop, reconcile=False))
        for _ in range(100):
            if any(r.getMessage().startswith("audit anchor: head") for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        stop.set()
        service.runtime.worker.wake()
        await background
        [line, *_] = [r for r in caplog.records if r.getMessage().startswith("audit anchor: head")]
        assert line.getMessage() == f"audit anchor: head {anchored}"
        assert f"{line.audit_head_seq}:{line.audit_head_hash}" == anchored

        # The newest records deleted and the head rewound: the manifest finds it.
        seq = manifest["audit_head"]["seq"]
        truncate_to(service.db, seq - 2)
        assert verify().exit_code == 0
        found = verify("--anchor", str(manifest_file))
        assert found.exit_code == 1
        assert f"records {seq - 1}..{seq} deleted: the anchor {seq}:" in found.output
        assert str(manifest_file) in found.output
    finally:
        get_settings.cache_clear()
