"""The due-event claim at 20,000 pending events: every statement it runs reads hr_events through
an index in claim order (no full scan, no sort of the backlog), and it still returns the right
events: immediate terminations first, then due terminations, then the rest in effective order,
with a person's later events and events held behind a failure left out, even when the first
page of candidates is all held back. The claim time is printed (a figure, not an assertion)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import event as sa_event

from provisioner.clock import utcnow
from provisioner.intake import repository
from provisioner.intake.models import EventStatus

BACKLOG = 20_000
HELD = 600  # earlier than everyone else and all held behind a failure: more than a page


def _row(n: int, employee_id: str, kind: str, at, *, status=EventStatus.PENDING, immediate=False) -> dict:
    return {"event_id": f"scale-{n}", "source": "workday", "type": kind, "employee_id": employee_id,
            "effective_at": at, "immediate": immediate, "cancels_event_id": None, "body_sha256": "0" * 64,
            "payload": {}, "received_at": at, "status": status}


def _backlog(db, now, size: int = BACKLOG) -> dict[str, int]:
    base = now - timedelta(days=1)
    rows = []
    for n in range(HELD):  # a failed event, then a pending update that waits behind it
        rows.append(_row(len(rows), f"H{n}", "hire", base - timedelta(seconds=1), status=EventStatus.FAILED))
        rows.append(_row(len(rows), f"H{n}", "update", base + timedelta(milliseconds=n)))
    for n in range(size - 2 * HELD - 4):
        rows.append(_row(len(rows), f"P{n}", "hire", base + timedelta(seconds=1, milliseconds=n)))
    named = {}
    for name, employee_id, kind, at, immediate in (
            ("m_hire", "M", "hire", base + timedelta(milliseconds=900), False),
            ("m_update", "M", "update", base + timedelta(milliseconds=950), False),  # waits behind the hire
            ("term", "T", "terminate", base + timedelta(hours=20), False),      # late, but a termination
            ("now", "I", "terminate", now + timedelta(days=30), True)):         # immediate: ahead of all
        named[name] = len(rows)
        rows.append(_row(len(rows), employee_id, kind, at, immediate=immediate))
    rows.append(_row(len(rows), "F", "hire", now + timedelta(days=1)))  # not due yet
    with db.transaction() as session:
        repository.insert_events(session, rows)
    with db.read() as session:
        ids = {e.event_id: e.id for e in repository.listing(session, limit=len(rows) + 1)}
    return {name: ids[f"scale-{n}"] for name, n in named.items()} | {
        "ids": ids}


def _plans(db, statements) -> list[tuple[str, str]]:
    """(statement, plan text) for every statement that reads hr_events."""
    out = []
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("ANALYZE hr_events")
            conn.exec_driver_sql("ANALYZE identities")
        for sql, params in statements:
            if "hr_events" not in sql:
                continue
            prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + sql, params).all()
            out.append((sql, "\n".join(str(r[-1]) for r in rows)))
    return out


def test_the_claim_reads_a_20k_backlog_by_index_and_returns_the_right_events(db):
    now = utcnow()
    known = _backlog(db, now)
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa_event.listen(db.engine, "before_cursor_execute", capture)
    try:
        started = time.perf_counter()
        with db.transaction() as session:
            claimed = [e.id for e in repository.claim_due(session, now, 500, skip_locked=db.dialect == "postgresql")]
        took = time.perf_counter() - started
        with db.read() as session:
            urgent = repository.due_terminations(session, now, 500)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", capture)
    print(f"\nclaim_due of 500 among {BACKLOG} pending ({db.dialect}): {took * 1000:.0f} ms, "
          f"{len(statements)} statements")

    ids = known["ids"]
    hires = [ids[f"scale-{n}"] for n in range(2 * HELD, 2 * HELD + 497)]
    assert claimed == [known["now"], known["term"], known["m_hire"], *hires]
    assert not any(ids[f"scale-{2 * n + 1}"] in claimed for n in range(HELD))  # held behind failures
    assert urgent == [known["now"], known["term"]]

    plans = _plans(db, statements)
    assert plans
    for sql, plan in plans:
        if db.dialect == "sqlite":
            # A search on the status alone walks every pending event: as bad as a scan.
            scans = [line for line in plan.splitlines() if "hr_events" in line
                     and (line.startswith("SCAN") or line.endswith("(status=?)"))]
            assert not scans and "TEMP B-TREE" not in plan, f"{sql}\n{plan}"
        else:
            assert "Seq Scan on hr_events" not in plan and "Sort" not in plan, f"{sql}\n{plan}"
