"""POST /hr/events: signatures, validation (RFC 7807 naming the field), idempotency, atomicity."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from provisioner.audit.models import AuditRecord
from provisioner.intake.models import HREvent
from tests.support import event, hire


def stored_events(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


async def post_raw(service, body: bytes, headers: dict[str, str]):
    return await service.api.post("/hr/events", content=body, headers=headers)


async def test_bad_signature_gets_401_and_nothing_is_stored(service):
    body = json.dumps(hire("s1", "S1", "Sig", "Nature", "Sales")).encode()
    headers = service.signed(body, secret="not-the-secret")
    resp = await post_raw(service, body, headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"] == "bad signature"
    assert stored_events(service) == 0


async def test_body_changed_after_signing_gets_401(service):
    body = json.dumps(hire("s2", "S2", "Sig", "Nature", "Sales")).encode()
    headers = service.signed(body)
    tampered = body.replace(b"Sales", b"Admin")
    assert (await post_raw(service, tampered, headers)).status_code == 401
    assert stored_events(service) == 0


async def test_stale_timestamp_gets_401(service):
    body = json.dumps(hire("s3", "S3", "Old", "Stamp", "Sales")).encode()
    headers = service.signed(body, timestamp=int(time.time()) - 301)
    resp = await post_raw(service, body, headers)
    assert resp.status_code == 401
    assert "stale timestamp" in resp.json()["detail"]
    assert stored_events(service) == 0


async def test_missing_signature_and_unknown_source_get_401(service):
    body = json.dumps(hire("s4", "S4", "No", "Sig", "Sales")).encode()
    assert (await post_raw(service, body, {"Content-Type": "application/json"})).status_code == 401
    headers = service.signed(body)
    headers["X-HR-Source"] = "someone-else"
    resp = await post_raw(service, body, headers)
    assert resp.status_code == 401 and resp.json()["detail"] == "bad signature"  # names no source


async def test_event_without_offset_is_rejected_naming_the_field(service):
    bad = hire("m1", "M1", "No", "Offset", "Sales")
    bad["effective_at"] = "2026-11-21T10:00:00"
    resp = await service.send(bad)
    assert resp.status_code == 400
    problem = resp.json()
    assert resp.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "effective_at"
    assert "timezone" in problem["detail"]
    assert stored_events(service) == 0


async def test_unknown_type_and_unknown_field_are_named(service):
    bad = event("m2", "fire", "M2")
    resp = await service.send(bad)
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "type"
    bad = hire("m3", "M3", "Ex", "Tra", "Sales")
    bad["attributes"]["shoe_size"] = 44
    resp = await service.send(bad)
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "attributes.shoe_size"


async def test_hire_without_names_and_cancel_without_target_are_rejected(service):
    resp = await service.send(event("m4", "hire", "M4", department="Sales"))
    assert resp.status_code == 400 and "given_name" in resp.json()["detail"]
    resp = await service.send(event("m5", "cancel", "M5"))
    assert resp.status_code == 400 and "cancels_event_id" in resp.json()["detail"]


async def test_invalid_json_is_a_problem_not_a_crash(service):
    body = b"{not json"
    resp = await post_raw(service, body, service.signed(body))
    assert resp.status_code == 400
    assert resp.json()["detail"].startswith("body: not valid JSON")


async def test_batch_with_one_bad_event_stores_nothing(service):
    events = [hire(f"b{n}", f"B{n}", "Bat", f"Ch{n}", "Sales") for n in range(5)]
    events[3]["effective_at"] = "yesterday"
    resp = await service.send(events)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "events.3.effective_at"
    assert stored_events(service) == 0
    with service.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0


async def test_known_event_id_with_different_body_gets_409_and_batch_is_atomic(service):
    assert (await service.send(hire("c1", "C1", "Con", "Flict", "Sales"))).status_code == 202
    changed = hire("c1", "C1", "Con", "Flict", "Finance")
    resp = await service.send(changed)
    assert resp.status_code == 409
    assert resp.json()["event_id"] == "c1"
    resp = await service.send([hire("c2", "C2", "New", "Person", "Sales"), changed])
    assert resp.status_code == 409
    assert stored_events(service) == 1  # c2 was not half-stored


async def test_batch_accepts_many_and_answers_per_event(service):
    events = [hire(f"ok{n}", f"OK{n}", "Fine", f"Person{n}", "Sales") for n in range(50)]
    resp = await service.send(events)
    assert resp.status_code == 202
    body = resp.json()
    assert body["accepted"] == 50 and body["duplicates"] == 0
    assert [r["event_id"] for r in body["receipts"]] == [e["event_id"] for e in events]
    assert stored_events(service) == 50
