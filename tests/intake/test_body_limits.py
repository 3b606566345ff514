"""Limits before work: a body is limited while it streams, before any signature or token check
(413), a body that is not JSON is 415, and memory stays bounded (the rest is never read)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from provisioner.intake.models import HREvent
from tests.support import hire

CHUNK = 64 * 1024
FIFTY_MB = 50 * 1024 * 1024


class CountingBody:
    """A streamed request body of ``total`` bytes that counts what the server pulled from it."""

    def __init__(self, total: int) -> None:
        self.total, self.sent = total, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            chunk = b'{"x": "' + b"a" * (CHUNK - 7) if self.sent == 0 else b"a" * CHUNK
            self.sent += len(chunk)
            yield chunk


def stored_events(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


async def test_an_unsigned_50_mb_streamed_body_is_413_before_being_read(service):
    limit = service.settings.hr_max_body_bytes
    body = CountingBody(FIFTY_MB)
    resp = await service.api.post("/hr/events", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"].startswith(f"body: at most {limit} bytes")
    assert body.sent <= limit + CHUNK  # the server stopped reading at the limit: 10 MiB of 50 read
    assert stored_events(service) == 0


async def test_a_declared_length_over_the_limit_is_413_without_reading_a_byte(service):
    body = CountingBody(FIFTY_MB)
    resp = await service.api.post("/hr/events", content=body, headers={
        "Content-Type": "application/json", "Content-Length": str(FIFTY_MB)})
    assert resp.status_code == 413 and resp.headers["content-type"] == "application/problem+json"
    assert body.sent == 0


async def test_scim_bodies_are_limited_before_the_token_is_checked(service):
    limit = service.settings.scim_max_body_bytes
    body = CountingBody(FIFTY_MB)
    resp = await service.api.post("/scim/v2/Users", content=body, headers={"Content-Type": "application/scim+json"})
    assert resp.status_code == 413  # not 401: nothing was read past the limit to check a token for
    assert resp.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert resp.json()["status"] == "413"
    assert body.sent <= limit + CHUNK
    # A small unauthenticated body still reaches the token check.
    assert (await service.api.post("/scim/v2/Users", json={"userName": "a"})).status_code == 401


async def test_a_signed_event_with_a_20_mb_extra_is_refused_and_a_1_mb_one_names_the_field(service):
    huge = hire("big1", "BIG1", "Big", "Extra", "Sales", extra={"blob": "x" * 20_000_000})
    raw = json.dumps(huge).encode()
    resp = await service.api.post("/hr/events", content=raw, headers=service.signed(raw))
    assert resp.status_code == 413
    large = hire("big2", "BIG2", "Big", "Extra", "Sales", extra={"blob": "x" * 1_000_000})
    resp = await service.send(large)
    assert resp.status_code == 400
    assert resp.json()["errors"] == [{"field": "attributes.extra.blob",
                                      "message": "String should have at most 1000 characters"}]
    assert stored_events(service) == 0


async def test_a_body_under_the_limit_passes_whole(service):
    events = [hire(f"w{n}", f"W{n}", "Whole", f"Body{n}", "Sales", extra={"pad": "p" * 900}) for n in range(2000)]
    raw = json.dumps({"events": events}).encode()
    assert 1_000_000 < len(raw) < service.settings.hr_max_body_bytes
    resp = await service.api.post("/hr/events", content=raw, headers=service.signed(raw))
    assert resp.status_code == 202, resp.text[:300]
    assert resp.json()["accepted"] == 2000


async def test_a_content_type_other_than_json_is_415_before_the_signature(service):
    raw = json.dumps(hire("ct1", "CT1", "Con", "Tent", "Sales")).encode()
    for media in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = service.signed(raw)
        if media is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = media
        resp = await service.api.post("/hr/events", content=raw, headers=headers)
        assert resp.status_code == 415, (media, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert "send application/json" in resp.json()["detail"]
    unsigned = await service.api.post("/hr/events", content=raw, headers={"Content-Type": "text/plain"})
    assert unsigned.status_code == 415
    headers = service.signed(raw)
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert (await service.api.post("/hr/events", content=raw, headers=headers)).status_code == 202
    assert stored_events(service) == 1
