"""``Database.named_lock``: one holder at a time across processes (PostgreSQL advisory lock,
SQLite ``flock``), released for the next holder, and no connection left holding it."""

from __future__ import annotations

import subprocess
import sys
import time

from provisioner.db import Database

HOLD = """
import sys, time
from provisioner.db import Database
db = Database(sys.argv[1])
lock = db.named_lock("target-groups:wiki")
assert lock.acquire(5)
print("held", flush=True)
sys.stdin.readline()  # hold until told
lock.release()
print("released", flush=True)
db.dispose()
"""


def test_a_lock_held_by_another_process_is_waited_for_then_taken(database_url: str, db: Database) -> None:
    other = subprocess.Popen([sys.executable, "-c", HOLD, database_url], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "held"
        lock = db.named_lock("target-groups:wiki")
        started = time.monotonic()
        assert lock.acquire(0.3) is False  # held elsewhere: refused after the timeout
        assert time.monotonic() - started >= 0.3
        assert db.named_lock("target-groups:crm").acquire(0.3)  # another name is free
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "released"
        assert lock.acquire(5)
        second = db.named_lock("target-groups:wiki")  # in this process too, one holder
        assert second.acquire(0.1) is False
        lock.release()
        assert second.acquire(1)
        second.release()
    finally:
        other.kill()
        other.wait(timeout=10)


def test_a_released_lock_leaves_no_connection_holding_it(database_url: str, db: Database) -> None:
    for _ in range(3):  # pooled connections come back without the lock
        lock = db.named_lock("n")
        assert lock.acquire(1)
        lock.release()
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            held = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").scalar()
        assert held == 0
