"""The addition claim's hold under PostgreSQL's READ COMMITTED: a create recorded between the
claim's page read and its "more coming?" check releases more additions of the same group. The
claim must see them as coming (hold the remainder), not send the group short of a whole request
(found by ``tests/bench/test_scale_small.py`` on a loaded CI machine: 1.2x the minimum writes)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation, OpStatus, Priority
from tests.conftest import PG_URL, _truncate_all

GROUP = "All Staff"


def _ops(db: Database, statuses: list[str]) -> list[int]:
    now = utcnow() - timedelta(seconds=1)
    ids: list[int] = []
    with db.transaction() as session:
        for n, status in enumerate(statuses):
            person = Identity(id=str(uuid.uuid4()), employee_id=f"R{n:05d}", state="active", created_at=now,
                              updated_at=now)
            session.add(person)
            session.flush()
            op = Operation(identity_id=person.id, target="entra", kind="add_member", group_key=GROUP,
                           payload={}, priority=Priority.NORMAL, status=status, attempts=0,
                           next_attempt_at=now, created_at=now)
            session.add(op)
            session.flush()
            ids.append(op.id)
    return ids


def _claim(db: Database, planning) -> tuple[list[int], object]:
    with db.transaction() as session:
        claimed, held = queue.claim_additions(
            session, "w1", utcnow(), timedelta(seconds=60), 200, per_request=20, hold=timedelta(seconds=30),
            skip_locked=db.dialect == "postgresql", targets=["entra"], planning=planning)
        return [c.id for c in claimed], held


def test_a_remainder_is_held_while_the_group_has_waiting_additions(db: Database) -> None:
    _ops(db, [OpStatus.PENDING] * 3 + [OpStatus.WAITING] * 2)
    claimed, held = _claim(db, lambda: False)
    assert claimed == [] and held is not None  # 3 ready, 2 on their way: wait for them


def test_a_remainder_goes_at_once_when_nothing_more_is_coming(db: Database) -> None:
    ids = _ops(db, [OpStatus.PENDING] * 3)
    claimed, held = _claim(db, lambda: False)
    assert sorted(claimed) == ids and held is None  # a mover's additions never wait for nothing


# SQLite serialises the claim with every writer: the window exists on PostgreSQL only.
@pytest.mark.skipif(not PG_URL, reason="PROVISIONER_TEST_POSTGRES_URL is not set")
def test_additions_released_between_the_page_and_the_check_hold_the_remainder(postgres_url: str) -> None:
    db = Database(postgres_url)
    _truncate_all(db)
    ids = _ops(db, [OpStatus.PENDING] * 3 + [OpStatus.WAITING] * 2)
    waiting = ids[3:]

    def planning() -> bool:
        # Asked after the page was read: another worker's create is recorded now, in its own
        # transaction, and releases the two waiting additions (ready as of a moment ago).
        with db.transaction() as other:
            other.execute(update(Operation).where(Operation.id.in_(waiting))
                          .values(status=OpStatus.PENDING, next_attempt_at=utcnow() - timedelta(seconds=1)))
        return False

    claimed, held = _claim(db, planning)
    assert claimed == [] and held is not None  # five now ready: the next round sends them in one request
    claimed, held = _claim(db, lambda: False)
    assert sorted(claimed) == ids and held is None
    db.dispose()
