"""What became of an HR event: the source reads it back with a signed GET, a rejected or
superseded event is logged at WARNING and counted in /metrics, and `provisioner events list`
and `provisioner identity` show it with its reason."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from provisioner.clock import utcnow
from provisioner.demo.harness import HR_SOURCE, SandboxedService
from provisioner.intake.fate import signed_read_headers
from provisioner.intake.signing import signed_headers
from tests.support import event, hire

OTHER_SOURCE, OTHER_SECRET = "bamboo", "bamboo-secret"


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[SandboxedService]:
    """The whole service with a second HR source ("bamboo", from a secrets file) beside workday."""
    secrets_file = tmp_path / "hr-secrets.json"
    secrets_file.write_text(json.dumps({OTHER_SOURCE: OTHER_SECRET}))
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                     "max_attempts": 4, "hr_secrets_file": secrets_file})
    try:
        yield svc
    finally:
        await svc.close()


async def read(svc: SandboxedService, target: str, *, source: str = HR_SOURCE, secret: str | None = None):
    headers = signed_read_headers(source, secret or svc.hr_secret, target)
    return await svc.api.get(target, headers=headers)


def hr_events_metric(text: str, status: str) -> float:
    match = re.search(rf'^provisioner_hr_events_total{{status="{status}"}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def send_rejected_cases(svc: SandboxedService) -> None:
    """Three events the lifecycle refuses: an update for someone never hired, a rehire of an
    active person, a leave for a leaver."""
    await svc.send([hire("r-hire-a", "RA", "Ada", "Active", "Sales"),
                    hire("r-hire-l", "RL", "Leo", "Leaver", "Sales")])
    await svc.drain()
    await svc.send(event("r-term-l", "terminate", "RL"))
    await svc.drain()
    await svc.send([event("r-upd-x", "update", "NOBODY", title="Ghost"),
                    {**hire("r-rehire-a", "RA", "Ada", "Active", "Sales"), "type": "rehire"},
                    event("r-leave-l", "leave", "RL")])
    await svc.drain()


REJECTED = {"r-upd-x": ("NOBODY", "unknown employee"),
            "r-rehire-a": ("RA", "'rehire' is not allowed from state active"),
            "r-leave-l": ("RL", "'leave' is not allowed from state terminated")}


async def test_each_rejected_event_is_readable_by_its_source_with_the_reason(service, caplog):
    caplog.set_level(logging.WARNING, logger="provisioner.hr_events")
    before = await service.metrics()
    await send_rejected_cases(service)
    for event_id, (employee_id, reason) in REJECTED.items():
        resp = await read(service, f"/hr/events/{event_id}")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["event_id"] == event_id and body["employee_id"] == employee_id
        assert body["status"] == "rejected"
        assert reason in body["reason"]
        assert body["received_at"] and body["processed_at"] and body["effective_at"]
    applied = (await read(service, "/hr/events/r-term-l")).json()
    assert applied["status"] == "applied" and applied["reason"] is None and applied["type"] == "terminate"

    # Logged at WARNING, structured, with an alert tag; counted in /metrics.
    warned = {r.event_id: r for r in caplog.records if r.name == "provisioner.hr_events"}
    assert set(warned) == set(REJECTED)
    for event_id, (employee_id, reason) in REJECTED.items():
        record = warned[event_id]
        assert record.levelno == logging.WARNING
        assert record.employee_id == employee_id and record.status == "rejected"
        assert reason in record.reason and record.alert == "hr_event_rejected"
    after = await service.metrics()
    assert hr_events_metric(after, "rejected") - hr_events_metric(before, "rejected") == 3
    assert hr_events_metric(after, "applied") - hr_events_metric(before, "applied") == 3


async def test_a_superseded_event_is_logged_counted_and_readable(service, caplog):
    caplog.set_level(logging.WARNING, logger="provisioner.hr_events")
    before = hr_events_metric(await service.metrics(), "superseded")
    t0 = utcnow()
    await service.send(hire("s-hire", "SU", "Sue", "Perseded", "Sales", at=t0 - timedelta(hours=2)))
    await service.send(event("s-new", "update", "SU", t0, title="Senior Seller"))
    await service.drain()
    await service.send(event("s-old", "update", "SU", t0 - timedelta(hours=1), title="Junior Seller"))
    await service.drain()
    body = (await read(service, "/hr/events/s-old")).json()
    assert body["status"] == "superseded" and "older" in body["reason"]
    [record] = [r for r in caplog.records if r.name == "provisioner.hr_events"]
    assert (record.event_id, record.status, record.alert) == ("s-old", "superseded", "hr_event_superseded")
    after = hr_events_metric(await service.metrics(), "superseded")
    assert after - before == 1


async def test_a_pending_event_reads_as_pending(service):
    await service.send(hire("p-hire", "PE", "Pat", "Ience", "Sales", at=utcnow() + timedelta(days=3)))
    body = (await read(service, "/hr/events/p-hire")).json()
    assert body["status"] == "pending" and body["processed_at"] is None


async def test_reads_need_the_sources_own_signature_and_never_leak(service):
    await service.send(hire("own-1", "OW", "Own", "Event", "Sales"))
    body = json.dumps(hire("other-1", "OT", "Other", "Source", "Sales")).encode()
    resp = await service.api.post("/hr/events", content=body,
                                  headers=signed_headers(OTHER_SOURCE, OTHER_SECRET, body))
    assert resp.status_code == 202
    # Unsigned, or signed for another path, or with the wrong secret: 401 problem+json.
    unsigned = await service.api.get("/hr/events/own-1")
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert "missing signature headers" in unsigned.json()["detail"]
    replayed = signed_read_headers(HR_SOURCE, service.hr_secret, "/hr/events/something-else")
    assert (await service.api.get("/hr/events/own-1", headers=replayed)).status_code == 401
    assert (await read(service, "/hr/events/own-1", secret="wrong")).status_code == 401
    # Each source reads its own; another source's event is the same 404 as an unknown one.
    assert (await read(service, "/hr/events/own-1")).json()["status"] == "pending"
    other = await read(service, "/hr/events/other-1", source=OTHER_SOURCE, secret=OTHER_SECRET)
    assert other.status_code == 200 and other.json()["employee_id"] == "OT"
    for target in ("/hr/events/other-1", "/hr/events/no-such-event"):
        resp = await read(service, target)
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["event_id"] == target.rsplit("/", 1)[1]
        assert "OT" not in resp.text
    assert (await read(service, "/hr/events/own-1", source=OTHER_SOURCE, secret=OTHER_SECRET)).status_code == 404


async def test_a_source_lists_its_rejected_events_page_by_page(service):
    since = utcnow() - timedelta(minutes=1)
    await send_rejected_cases(service)
    target = f"/hr/events?status=rejected&since={since.isoformat().replace('+', '%2B')}&limit=2"
    first = await read(service, target)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [e["event_id"] for e in page["events"]] == ["r-upd-x", "r-rehire-a"]
    second = (await read(service, page["next"])).json()
    assert [e["event_id"] for e in second["events"]] == ["r-leave-l"] and second["next"] is None
    assert (await read(service, "/hr/events?status=rejected", source=OTHER_SOURCE,
                       secret=OTHER_SECRET)).json()["events"] == []
    bad = await read(service, "/hr/events?status=lost")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.status"
    assert (await service.api.get("/hr/events")).status_code == 401


async def test_events_list_and_identity_show_rejections_with_reasons(service, cli):
    await send_rejected_cases(service)
    result = cli("events", "list", "--rejected", "--json")
    assert result.exit_code == 0, result.output
    rows = {e["event_id"]: e for e in json.loads(result.output)}
    assert set(rows) == set(REJECTED)
    for event_id, (_, reason) in REJECTED.items():
        assert rows[event_id]["status"] == "rejected" and reason in rows[event_id]["reason"]
    table = cli("events", "list", "--rejected")
    assert table.exit_code == 0 and all(event_id in table.output for event_id in REJECTED)
    assert "r-term-l" not in table.output
    mine = json.loads(cli("events", "list", "--employee", "RL", "--json").output)
    assert [e["event_id"] for e in mine] == ["r-leave-l", "r-term-l", "r-hire-l"]
    assert cli("events", "list", "--status", "lost").exit_code == 2
    person = cli("identity", "RL")
    assert person.exit_code == 0, person.output
    assert "r-leave-l (workday) REJECTED: 'leave' is not allowed from state terminated" in person.output
    ghost = cli("identity", "NOBODY")  # never hired: still shows what HR sent and why it was refused
    assert ghost.exit_code == 0 and "r-upd-x (workday) REJECTED: unknown employee" in ghost.output
    assert cli("identity", "NEVER-SEEN").exit_code == 2
