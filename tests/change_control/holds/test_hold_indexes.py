"""Held operations do not cost the workers: the claim still reads ``ix_operations_claim`` (a
range on ``status = 'pending'``: held rows are outside it), and the hold's sliding-window count
reads the partial ``ix_operations_cause``. Checked with the planner's own choice on both engines
(PostgreSQL with sequential scans off: the tables are tiny)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, text

from provisioner.change_control.holds import repository as holds
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.queue import repository as queue


def explained(db: Database, run) -> list[str]:
    """The plans of every SELECT ``run(session)`` sends."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "pg_advisory" not in statement:
            sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.transaction() as session:
            run(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    plans = []
    with db.engine.connect() as conn:
        for statement, parameters in sent:
            if db.dialect == "postgresql":
                conn.execute(text("SET enable_seqscan = off"))
                rows = conn.exec_driver_sql(f"EXPLAIN {statement.replace(' FOR UPDATE SKIP LOCKED', '')}",
                                            parameters).all()
            else:
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_the_claim_and_the_window_count_use_their_indexes(db: Database):
    now = utcnow()
    [claim] = explained(db, lambda s: queue.claim(s, "w", now, timedelta(seconds=60), 10,
                                                  skip_locked=db.dialect == "postgresql", revocation=True))
    assert "ix_operations_claim" in claim, claim
    [window] = explained(db, lambda s: holds.window_people(s, "entra", "snapshot_import",
                                                           now - timedelta(hours=1), None))
    assert "ix_operations_cause" in window, window
