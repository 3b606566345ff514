"""POST /hr/webhooks/{source} with the shipped examples (examples/hr_sources/bamboohr.yaml and
hibob.yaml) and payloads in the shapes BambooHR and HiBob document, signed as they sign: stored
as HR events through the intake, then through the worker to the Graph sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioner.demo.harness import SandboxedService
from tests.hr_sources.webhook_support import (
    SECRETS,
    at_documented_time,
    bamboohr_headers,
    copy_examples,
    dumps,
    hibob_headers,
    payload,
    stored,
)
from tests.support import EntraView, hire

ACME = """\
webhook:
  signature: {{scheme: hmac-sha256, header: X-Acme-Signature, secret: {{file: {secret_file}}}}}
  event_id: id
  employee_id: person.number
  type: kind
  effective_at: at
  attributes: {{department: person.org, manager_employee_id: person.boss}}
"""


@pytest.fixture
async def hooks(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SandboxedService]:
    """The whole service with examples/hr_sources as its HR sources, their secrets in the
    variables the examples name."""
    monkeypatch.setenv("PROVISIONER_HR_WEBHOOK_SECRET_BAMBOOHR", SECRETS["bamboohr"])
    monkeypatch.setenv("PROVISIONER_HR_WEBHOOK_SECRET_HIBOB", SECRETS["hibob"])
    sources = copy_examples(tmp_path / "hr_sources")
    (tmp_path / "acme-secret").write_text("acme-secret\n")
    (sources / "acme.yaml").write_text(ACME.format(secret_file=tmp_path / "acme-secret"))
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={"hr_sources_dir": sources, "hr_max_body_bytes": 4096,
                                     "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05})
    at_documented_time()
    try:
        yield svc
    finally:
        await svc.close()


async def post_bamboohr(svc: SandboxedService, body: bytes, **kw):
    return await svc.api.post("/hr/webhooks/bamboohr", content=body, headers=bamboohr_headers(body, **kw))


async def post_hibob(svc: SandboxedService, body: bytes, **kw):
    return await svc.api.post("/hr/webhooks/hibob", content=body, headers=hibob_headers(body, **kw))


async def test_bamboohr_created_becomes_a_hire_and_an_entra_account(hooks: SandboxedService):
    resp = await post_bamboohr(hooks, payload("bamboohr_field_based_created.json"))
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert (answer["status"], answer["accepted"], answer["duplicates"], answer["ignored"]) == ("accepted", 1, 0, [])
    [event] = stored(hooks)
    assert event["source"] == "bamboohr" and event["event_id"] == answer["receipts"][0]["event_id"]
    assert event["event_id"].startswith("bamboohr:") and len(event["event_id"]) == len("bamboohr:") + 64
    assert (event["type"], event["employee_id"]) == ("hire", "12345")
    assert event["effective_at"] == datetime(2026, 1, 31, 9, 15, tzinfo=UTC)
    assert event["payload"]["attributes"] == {
        "given_name": "Bryan", "family_name": "Walsh", "title": "Account Executive", "department": "Sales",
        "location": "London", "employment_type": "Full-Time", "start_date": "2026-01-31",
        "extra": {"division": "EMEA"}}
    await hooks.drain()
    user = EntraView(hooks).user("12345")
    assert user is not None, "no account in the Graph sandbox"
    assert (user["givenName"], user["surname"], user["department"], user["jobTitle"]) == (
        "Bryan", "Walsh", "Sales", "Account Executive")
    assert user["accountEnabled"] is True


async def test_bamboohr_documented_update_changes_only_what_it_carries_and_a_redelivery_is_a_duplicate(
        hooks: SandboxedService):
    assert (await post_bamboohr(hooks, payload("bamboohr_field_based_created.json"))).status_code == 202
    await hooks.drain()
    documented = payload("bamboohr_field_based_updated.json")  # BambooHR's own example, verbatim
    resp = await post_bamboohr(hooks, documented)
    assert resp.status_code == 202 and resp.json()["accepted"] == 1
    update = stored(hooks)[-1]
    assert (update["type"], update["employee_id"]) == ("update", "12345")
    assert update["payload"]["attributes"] == {"given_name": "Bryony"}  # nothing else is cleared
    again = await post_bamboohr(hooks, documented)  # BambooHR retries: same record, same event id
    assert again.status_code == 202
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert len(stored(hooks)) == 2
    await hooks.drain()
    user = EntraView(hooks).user("12345")
    assert (user["givenName"], user["department"]) == ("Bryony", "Sales")


async def test_bamboohr_status_inactive_is_a_termination(hooks: SandboxedService):
    assert (await post_bamboohr(hooks, payload("bamboohr_field_based_created.json"))).status_code == 202
    await hooks.drain()
    resp = await post_bamboohr(hooks, payload("bamboohr_field_based_inactive.json"))
    assert resp.status_code == 202, resp.text
    leaver = stored(hooks)[-1]
    assert (leaver["type"], leaver["employee_id"]) == ("terminate", "12345")
    assert leaver["payload"]["attributes"] == {"end_date": "2026-01-31"}


async def test_hibob_employee_left_terminates_the_account(hooks: SandboxedService):
    bob_id = "3332883854254932743"
    resp = await hooks.send(hire("bob-hire", bob_id, "Ada", "Byron", "Finance",
                                 at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    assert resp.status_code == 202, resp.text
    await hooks.drain()
    entra = EntraView(hooks)
    assert entra.user(bob_id)["accountEnabled"] is True
    resp = await post_hibob(hooks, payload("hibob_v2_employee_left.json"))
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "accepted"
    leaver = stored(hooks, "hibob")[0]
    assert (leaver["type"], leaver["employee_id"]) == ("terminate", bob_id)
    # triggeredAt has no offset: read in the example's effective_timezone (London, UTC+0 in January)
    assert leaver["effective_at"] == datetime(2026, 1, 31, 0, 0, 2, 104312, tzinfo=UTC)
    assert leaver["payload"]["attributes"] == {"extra": {"bob_company_id": "636192"}}
    await hooks.drain()
    assert entra.user(bob_id)["accountEnabled"] is False
    assert entra.state(bob_id) == "terminated"


async def test_hibob_documented_table_entry_is_ignored_with_the_reason(hooks: SandboxedService):
    resp = await post_hibob(hooks, payload("hibob_v2_table_entry_created.json"))  # HiBob's example, verbatim
    assert resp.status_code == 202
    assert resp.json() == {"status": "ignored", "accepted": 0, "duplicates": 0, "receipts": [], "ignored": [
        {"record": 0, "reason": "type 'table.entry.created' is mapped to 'ignore'"}]}
    unmapped = dumps({**json.loads(payload("hibob_v2_table_entry_created.json")), "type": "ping.test"})
    resp = await post_hibob(hooks, unmapped)
    assert resp.status_code == 202
    assert resp.json()["ignored"][0]["reason"] == "type 'ping.test' is not in the source's type_map"
    assert stored(hooks) == []


async def test_bad_signatures_are_401_and_store_nothing(hooks: SandboxedService):
    body = payload("bamboohr_field_based_created.json")
    wrong_key = await post_bamboohr(hooks, body, secret="not-the-key")
    assert wrong_key.status_code == 401 and wrong_key.json()["detail"] == "bad signature"
    assert wrong_key.headers["content-type"] == "application/problem+json"
    stale = await post_bamboohr(hooks, body, timestamp=int(time.time()) - 301)
    assert stale.status_code == 401 and "stale timestamp" in stale.json()["detail"]
    headers = bamboohr_headers(body)
    tampered = await hooks.api.post("/hr/webhooks/bamboohr", content=body.replace(b"Sales", b"Admin"),
                                    headers=headers)
    assert tampered.status_code == 401
    unsigned = await hooks.api.post("/hr/webhooks/hibob", content=payload("hibob_v2_employee_left.json"),
                                    headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and "Bob-Signature" in unsigned.json()["detail"]
    bob_with_bamboo_key = await post_hibob(hooks, payload("hibob_v2_employee_left.json"), secret=SECRETS["bamboohr"])
    assert bob_with_bamboo_key.status_code == 401
    unknown = await hooks.api.post("/hr/webhooks/workday", content=body, headers=bamboohr_headers(body))
    assert unknown.status_code == 401 and unknown.json()["detail"] == "bad signature"  # names no source
    assert stored(hooks) == []


async def test_a_mapped_value_the_intake_refuses_is_400_naming_the_record_field(hooks: SandboxedService):
    data = json.loads(payload("bamboohr_field_based_created.json"))
    good = data["employees"][0]
    bad_date = {**good, "id": "12346", "fields": {**good["fields"], "Hire Date": "31/01/2026"}}
    no_surname = {**good, "id": "12347", "fields": {k: v for k, v in good["fields"].items() if k != "Last Name"}}
    resp = await post_bamboohr(hooks, dumps({"employees": [good, bad_date, no_surname]}))
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in resp.json()["errors"]]
    assert fields == ["records[1].attributes.start_date", "records[2].attributes.family_name"]
    assert resp.json()["detail"].startswith("records[1].attributes.start_date: ")
    assert stored(hooks) == []  # all or nothing: the good record is not stored either


async def test_a_body_over_the_limit_is_413_before_its_signature_is_checked(hooks: SandboxedService):
    data = json.loads(payload("bamboohr_field_based_created.json"))
    data["employees"] *= 20  # > PROVISIONER_HR_MAX_BODY_BYTES (4096 here)
    body = dumps(data)
    assert len(body) > 4096
    resp = await hooks.api.post("/hr/webhooks/bamboohr", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert stored(hooks) == []


async def test_not_json_is_415(hooks: SandboxedService):
    body = b"employees[12345][First+name]=John"  # BambooHR's form encoding: configure JSON instead
    resp = await hooks.api.post("/hr/webhooks/bamboohr", content=body, headers={
        **bamboohr_headers(body), "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and "application/json" in resp.json()["detail"]


async def test_a_generic_hmac_source_with_its_secret_in_a_file_and_its_own_event_ids(hooks: SandboxedService):
    body = dumps({"id": "evt-1", "kind": "transfer", "at": "2026-01-31T10:00:00+01:00",
                  "person": {"number": 4711, "org": "Research", "boss": None}})
    mac = hmac.new(b"acme-secret", body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    bad = await hooks.api.post("/hr/webhooks/acme", content=body, headers={**headers, "X-Acme-Signature": "0" * 64})
    assert bad.status_code == 401
    resp = await hooks.api.post("/hr/webhooks/acme", content=body,
                                headers={**headers, "X-Acme-Signature": f"sha256={mac}"})
    assert resp.status_code == 202, resp.text
    [event] = stored(hooks, "acme")
    assert (event["event_id"], event["type"], event["employee_id"]) == ("acme:evt-1", "transfer", "4711")
    assert event["effective_at"] == datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert event["payload"]["attributes"] == {"department": "Research"}  # the null manager is left out


async def test_an_empty_secret_file_is_refused_not_used_as_a_key(hooks: SandboxedService, tmp_path: Path):
    """An empty secret file (a mount made before it was filled) must not become a key anyone can
    sign with: the post is refused with 503 and nothing is stored."""
    (tmp_path / "acme-secret").write_text("\n")
    body = dumps({"id": "evt-2", "kind": "terminate", "at": "2026-01-31T10:00:00+01:00",
                  "person": {"number": 4712, "org": "Research", "boss": None}})
    forged = hmac.new(b"", body, hashlib.sha256).hexdigest()
    resp = await hooks.api.post("/hr/webhooks/acme", content=body,
                                headers={"Content-Type": "application/json", "X-Acme-Signature": forged})
    assert resp.status_code == 503, resp.text
    assert "no readable secret" in resp.json()["detail"]
    assert stored(hooks, "acme") == []
