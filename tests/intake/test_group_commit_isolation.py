"""The intake's group commit isolates a request that cannot be stored: the others commit.

Validation stops every bad value it knows of before the writer; this is the guard behind it (a
request the database refuses for a reason validation missed). The poison goes to the writer as
the endpoint hands it events, built without validation, among 50 valid signed HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select

from provisioner.clock import utcnow
from provisioner.identities.lifecycle import EventType
from provisioner.intake.models import HREvent
from provisioner.intake.schemas import HREventIn
from provisioner.intake.writer import StoreError
from tests.support import hire


def _poison(engine: str) -> tuple[HREventIn, str | None]:
    """An event and source the database refuses: on PostgreSQL a 150-character employee_id (the
    column holds 100); SQLite enforces no length, so there the source is NULL (NOT NULL column)."""
    event = HREventIn.model_construct(event_id="poison-1", type=EventType.TERMINATE, employee_id="P" * 150,
                                      effective_at=utcnow(), immediate=False, cancels_event_id=None)
    return event, ("workday" if engine == "postgresql" else None)


async def test_a_poison_request_among_50_concurrent_valid_ones_fails_alone(service, caplog):
    engine = service.db.engine.dialect.name
    poison, source = _poison(engine)
    writer = service.app.state.intake_writer

    async def poisoned() -> BaseException | list:
        try:
            return await writer.submit([poison], source)  # type: ignore[arg-type]
        except StoreError as exc:
            return exc

    caplog.set_level(logging.WARNING, logger="provisioner.intake")
    valid = [service.send(hire(f"v{n}", f"V{n}", "Val", f"Id{n}", "Sales")) for n in range(50)]
    answers = await asyncio.gather(*valid[:25], poisoned(), *valid[25:])
    failed = answers[25]
    assert isinstance(failed, StoreError) and failed.status == 500
    assert "nothing of this request was stored" in str(failed)
    assert [a.status_code for a in answers[:25] + answers[26:]] == [202] * 50
    with service.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(HREvent)) == 50
        assert session.scalar(select(func.count()).select_from(HREvent).where(HREvent.event_id == "poison-1")) == 0
    # It shared a group with valid requests, which were then committed one by one.
    shared = [r for r in caplog.records if "committing them one by one" in r.getMessage()]
    assert shared, "the poison was committed alone: the test did not exercise a shared group"
    alert = [r for r in caplog.records if getattr(r, "alert", None) == "hr_intake_store_failed"]
    assert len(alert) == 1 and alert[0].event_ids == ["poison-1"]
    # The intake goes on.
    assert (await service.send(hire("after", "AFTER", "Af", "Ter", "Sales"))).status_code == 202
