"""GET /readyz says whether the flow moves (GET /healthz only that the process answers): a halted
target, an old open operation, an old due HR event, an unverified leaver and dead letters over
their limits each make it 503, naming why; the same figures are gauges in /metrics."""

from __future__ import annotations

from datetime import timedelta

from provisioner.clock import clock
from tests.support import event, hire


def gauge(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    [line] = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.split()[-1])


async def readyz(service):
    resp = await service.api.get("/readyz")
    return resp.status_code, resp.json()


async def test_an_idle_service_is_ready_and_reports_every_figure(service):
    status, body = await readyz(service)
    assert status == 200, body
    assert body["status"] == "ready" and body["problems"] == [] and body["halted_targets"] == []
    assert body["queue"] == {"open": 0, "oldest_age_seconds": None}
    assert body["dead_letters"] == 0
    assert body["unverified_leavers"] == {"count": 0, "oldest_age_seconds": None}
    assert body["hr_events"] == {"due": 0, "oldest_due_age_seconds": None}
    assert body["thresholds"]["queue_age_seconds"] == 3600.0


async def test_a_halted_target_is_not_ready_while_healthz_says_ok(service):
    service.sandbox.fail_next("*", r"^/users", status=403, code="Authorization_RequestDenied",
                              message="Insufficient privileges to complete the operation.", times=50)
    await service.send([hire(f"h-{n}", f"H{n}", "Hal", f"Ted{n}", "Sales") for n in range(3)])
    await service.drain(max_wait=10)
    assert (await service.api.get("/healthz")).status_code == 200
    status, body = await readyz(service)
    assert status == 503, body
    assert [h["target"] for h in body["halted_targets"]] == ["entra"]
    assert any(p.startswith("target entra halted until") for p in body["problems"])
    assert body["queue"]["open"] > 0
    text = await service.metrics()
    assert gauge(text, "provisioner_target_halted", 'target="entra"') == 1.0
    assert gauge(text, "provisioner_queue_oldest_open_age_seconds") >= 0


async def test_due_events_and_open_operations_waiting_too_long_are_not_ready(service):
    await service.send(hire("w-1", "W1", "Wai", "Ting", "Sales"))
    clock.advance(timedelta(minutes=10))  # nobody processed it
    status, body = await readyz(service)
    assert status == 503
    assert body["hr_events"]["due"] == 1 and body["hr_events"]["oldest_due_age_seconds"] >= 600
    assert body["problems"] == [f"the oldest due HR event has waited "
                                f"{body['hr_events']['oldest_due_age_seconds']:.0f} s (limit 300 s)"]
    text = await service.metrics()
    assert gauge(text, "provisioner_hr_events_due") == 1.0
    assert gauge(text, "provisioner_hr_events_due_oldest_age_seconds") >= 600

    await service.runtime.process_events()  # planned, but no worker runs
    status, body = await readyz(service)
    assert status == 200 and body["queue"]["open"] > 0 and body["hr_events"]["due"] == 0
    clock.advance(timedelta(hours=2))
    status, body = await readyz(service)
    assert status == 503
    assert body["queue"]["oldest_age_seconds"] >= 7200
    assert any(p.startswith("the oldest open operation has waited") for p in body["problems"])
    service.settings.readiness_max_queue_age_seconds = None  # configurable: not checked
    assert (await readyz(service))[0] == 200


async def test_an_unverified_leaver_is_counted_and_not_ready_after_its_limit(service):
    await service.send(hire("l-1", "L1", "Lea", "Ver", "Sales"))
    await service.drain()
    assert (await readyz(service))[0] == 200
    await service.send(event("l-2", "terminate", "L1", immediate=True))
    await service.runtime.process_events()  # the revocation is planned; no worker has run it
    status, body = await readyz(service)
    assert status == 200 and body["unverified_leavers"]["count"] == 1
    assert gauge(await service.metrics(), "provisioner_leavers_unverified") == 1.0
    clock.advance(timedelta(hours=2))
    status, body = await readyz(service)
    assert status == 503
    assert any(p.startswith("the oldest unverified leaver has waited") for p in body["problems"])
    await service.drain()  # revoked and read back
    status, body = await readyz(service)
    assert status == 200, body  # the account's deletion 30 days on is scheduled, not waiting
    assert body["unverified_leavers"] == {"count": 0, "oldest_age_seconds": None}
    assert body["queue"] == {"open": 0, "oldest_age_seconds": None}
    assert gauge(await service.metrics(), "provisioner_leavers_unverified") == 0.0


async def test_dead_letters_are_counted_and_fail_readiness_when_configured(service):
    await service.send(hire("d-1", "D1", "Dea", "Dletter", "Sales"))
    await service.drain()
    service.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest", message="nope")
    await service.send(event("d-2", "update", "D1", title="Boss"))
    await service.drain()
    status, body = await readyz(service)
    assert status == 200 and body["dead_letters"] == 1  # by default reported, not failing
    assert gauge(await service.metrics(), "provisioner_dead_letters") == 1.0
    service.settings.readiness_max_dead_letters = 0
    status, body = await readyz(service)
    assert status == 503 and body["problems"] == [
        "1 dead letter(s) (limit 0): 'provisioner ops list --dead'"]


def test_a_readiness_limit_is_turned_off_by_an_empty_value(monkeypatch):
    from provisioner.settings import Settings

    monkeypatch.setenv("PROVISIONER_READINESS_MAX_QUEUE_AGE_SECONDS", "")
    monkeypatch.setenv("PROVISIONER_READINESS_MAX_DEAD_LETTERS", "0")
    settings = Settings()
    assert settings.readiness_max_queue_age_seconds is None and settings.readiness_max_dead_letters == 0
    assert settings.readiness_max_event_age_seconds == 300.0
