"""One event the processor cannot process never stops the flow: it is marked failed with its
reason (CLI, metrics, an alert in the log), everyone else's events go on, revocation is never
held, the person's other later events wait behind it in order, and after the cause is fixed
`provisioner events replay` applies it and then what waited.

The poison events are stored straight into hr_events, as an HR event accepted before the intake
learned to refuse it would be: one whose start_date is no date (the processor raises on both
engines) and, on PostgreSQL, a hire whose family_name is longer than the column (the database
refuses it when the person is stored; SQLite does not enforce lengths)."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from provisioner.clock import utcnow
from provisioner.intake import repository
from provisioner.intake.models import EventStatus, HREvent
from tests.intake.test_event_fate import hr_events_metric
from tests.support import EntraView, event, hire


def store_raw(svc, body: dict[str, Any]) -> None:
    """Store an event as the intake would have, without its validation."""
    now = utcnow()
    with svc.db.transaction() as session:
        repository.insert_events(session, [{
            "event_id": body["event_id"], "source": "workday", "type": body["type"],
            "employee_id": body["employee_id"], "effective_at": body["at"], "immediate": False,
            "cancels_event_id": None, "body_sha256": hashlib.sha256(json.dumps(body, default=str).encode()).hexdigest(),
            "payload": {k: v for k, v in body.items() if k != "at"} | {"effective_at": body["at"].isoformat()},
            "received_at": now, "status": EventStatus.PENDING}])


def status_of(svc, event_id: str) -> tuple[str, str | None]:
    with svc.db.read() as session:
        e = repository.get(session, event_id)
        return e.status, e.status_reason


async def test_a_poison_event_fails_alone_and_hires_and_terminates_take_effect(service, cli, caplog):
    caplog.set_level(logging.WARNING)
    entra = EntraView(service)
    now = utcnow()
    await service.send([hire("iso-h-r", "ISO-R", "Rita", "Leaver", "Sales", now - timedelta(hours=2)),
                        hire("iso-h-s", "ISO-S", "Sam", "Stuck", "Sales", now - timedelta(hours=2))])
    await service.drain()
    assert entra.user("ISO-R")["accountEnabled"] is True and entra.user("ISO-S")["accountEnabled"] is True
    before = await service.metrics()

    # S's update chokes the processor; on PostgreSQL so does P's hire with an over-long name.
    poisons = {"iso-poison-s": "ValueError"}
    store_raw(service, {"event_id": "iso-poison-s", "type": "update", "employee_id": "ISO-S",
                        "at": now - timedelta(minutes=3), "attributes": {"start_date": "2026-02-30"}})
    if service.db.dialect == "postgresql":
        poisons["iso-poison-p"] = "value too long for type character varying(200)"
        store_raw(service, {"event_id": "iso-poison-p", "type": "hire", "employee_id": "ISO-P",
                            "at": now - timedelta(minutes=3),
                            "attributes": {"given_name": "Pat", "family_name": "X" * 300,
                                           "department": "Sales", "employment_type": "employee"}})
    resp = await service.send([
        hire("iso-h-q", "ISO-Q", "Quinn", "Joiner", "Sales", now - timedelta(minutes=2)),
        event("iso-upd-s", "update", "ISO-S", now - timedelta(minutes=1), title="Later title"),
        event("iso-term-r", "terminate", "ISO-R", now),
        event("iso-term-s", "terminate", "ISO-S", now),
    ])
    assert resp.status_code == 202, resp.text
    await service.drain()

    for event_id, reason in poisons.items():
        status, why = status_of(service, event_id)
        assert status == "failed" and reason in why, (event_id, status, why)
    # Everyone else's events went on: the hire and both terminates took effect in Graph.
    assert entra.user("ISO-Q")["accountEnabled"] is True
    assert entra.user("ISO-R")["accountEnabled"] is False
    # S's own terminate was not held behind S's failed update: revocation never waits.
    assert status_of(service, "iso-term-s")[0] == "applied"
    assert entra.user("ISO-S")["accountEnabled"] is False
    # S's later update waits behind the failed one (never applied out of order over it).
    assert status_of(service, "iso-upd-s") == ("pending", None)
    if "iso-poison-p" in poisons:
        assert entra.user("ISO-P") is None and entra.state("ISO-P") is None  # nothing half-stored

    # Counted, logged as an alert, listed by the CLI.
    after = await service.metrics()
    assert hr_events_metric(after, "failed") - hr_events_metric(before, "failed") == len(poisons)
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "hr_event_failed"]
    assert sorted(r.event_id for r in alerts) == sorted(poisons)
    assert all(r.levelno == logging.ERROR and r.reason for r in alerts)
    listed = json.loads(cli("events", "list", "--status", "failed", "--json").output)
    assert {e["event_id"]: e["status"] for e in listed} == dict.fromkeys(poisons, "failed")
    assert all(poisons[e["event_id"]] in e["reason"] for e in listed)

    # Not retried every few seconds: later rounds leave the failed events alone.
    with service.db.read() as session:
        stamped = {e.event_id: e.processed_at for e in repository.listing(session, status="failed")}
    await service.drain()
    await service.drain()
    with service.db.read() as session:
        assert {e.event_id: e.processed_at for e in repository.listing(session, status="failed")} == stamped
    assert len([r for r in caplog.records if getattr(r, "alert", None) == "hr_event_failed"]) == len(poisons)


async def test_replay_after_the_cause_is_fixed_applies_it_then_what_waited(service, cli):
    """A hire that failed holds the person's terminate (there is nothing to revoke yet, and a
    refused terminate would let the replayed hire grant access to a leaver); after the fix and
    the replay, the hire applies, then the terminate, in order."""
    entra = EntraView(service)
    now = utcnow()
    store_raw(service, {"event_id": "rp-hire-t", "type": "hire", "employee_id": "RP-T",
                        "at": now - timedelta(minutes=5),
                        "attributes": {"given_name": "Tom", "family_name": "Replay", "department": "Sales",
                                       "employment_type": "employee", "start_date": "2026-02-30"}})
    await service.send(hire("rp-hire-u", "RP-U", "Uma", "Other", "Sales", now - timedelta(minutes=4)))
    await service.drain()
    await service.send(event("rp-term-t", "terminate", "RP-T", now - timedelta(minutes=1)))
    await service.drain()
    assert status_of(service, "rp-hire-t")[0] == "failed"
    assert status_of(service, "rp-term-t") == ("pending", None)  # held: no record, nothing to revoke yet
    assert entra.user("RP-U")["accountEnabled"] is True

    refused = cli("events", "replay", "rp-hire-u")
    assert refused.exit_code == 2 and "is applied, not failed" in refused.output
    assert cli("events", "replay").exit_code == 2  # neither ids nor --all

    # The cause is fixed (here: the stored date corrected), then the event replayed.
    with service.db.transaction() as session:
        row = repository.get(session, "rp-hire-t")
        session.execute(update(HREvent).where(HREvent.id == row.id).values(
            payload={**row.payload, "attributes": {**row.payload["attributes"], "start_date": "2026-02-28"}}))
    result = cli("events", "replay", "rp-hire-t")
    assert result.exit_code == 0, result.output
    assert "1 later event(s) of this person waited behind it" in result.output
    assert status_of(service, "rp-hire-t") == ("pending", None)
    await service.drain()
    assert status_of(service, "rp-hire-t")[0] == "applied"
    assert status_of(service, "rp-term-t")[0] == "applied"  # after the hire (before it, it would be refused)
    assert entra.state("RP-T") == "terminated"
    user = entra.user("RP-T")  # the leaver never holds access (the account is never enabled)
    assert user is None or user["accountEnabled"] is False


async def test_discard_gives_up_on_a_failed_event_and_releases_what_waited(service, cli):
    entra = EntraView(service)
    now = utcnow()
    await service.send(hire("dc-hire-v", "DC-V", "Vic", "Discard", "Sales", now - timedelta(hours=1)))
    await service.drain()
    store_raw(service, {"event_id": "dc-poison-v", "type": "transfer", "employee_id": "DC-V",
                        "at": now - timedelta(minutes=3), "attributes": {"start_date": "not a date"}})
    await service.send(event("dc-upd-v", "update", "DC-V", now - timedelta(minutes=1), title="After"))
    await service.drain()
    assert status_of(service, "dc-upd-v")[0] == "pending"
    assert cli("events", "discard", "dc-poison-v", "--reason", " ").exit_code == 2
    result = cli("events", "discard", "dc-poison-v", "--reason", "HR resent it corrected")
    assert result.exit_code == 0, result.output
    status, why = status_of(service, "dc-poison-v")
    assert status == "rejected" and "HR resent it corrected" in why and "ValueError" in why
    await service.drain()
    assert status_of(service, "dc-upd-v")[0] == "applied"
    assert entra.user("DC-V")["jobTitle"] == "After"
