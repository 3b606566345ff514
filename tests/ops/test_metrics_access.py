"""/metrics needs a bearer token (the metrics token or an admin API token) unless opened by
configuration; a 401, here and at /hr/events, tells nothing: no token, an unknown or a revoked one
get one answer, and an unknown HR source gets the answer a bad signature gets."""

from __future__ import annotations

import json

from provisioner.tokens.service import create_token, revoke_token
from tests.support import hire


async def test_metrics_need_the_metrics_token_or_an_admin_token(service):
    with service.db.transaction() as session:
        admin = create_token(session, "ops-admin", {"admin"})
        auditor = create_token(session, "ops-auditor", {"auditor"})
    answers = []
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        resp = await service.api.get("/metrics", headers=headers)
        assert resp.status_code == 401 and resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        answers.append(resp.json())
    assert all(a == answers[0] for a in answers)
    assert "provisioner_" not in json.dumps(answers[0])
    ok = await service.api.get("/metrics", headers={"Authorization": f"Bearer {service.metrics_token}"})
    assert ok.status_code == 200 and "provisioner_queue_operations" in ok.text
    assert (await service.api.get("/metrics", headers={"Authorization": f"Bearer {admin}"})).status_code == 200
    assert (await service.api.get("/metrics", headers={"Authorization": f"Bearer {auditor}"})).status_code == 403
    with service.db.transaction() as session:
        revoke_token(session, "ops-admin")
    revoked = await service.api.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 401 and revoked.json() == answers[0]


async def test_metrics_can_be_opened_by_configuration(service):
    service.settings.metrics_public = True
    resp = await service.api.get("/metrics")
    assert resp.status_code == 200 and "provisioner_dead_letters" in resp.text


async def test_an_unknown_hr_source_gets_the_answer_a_bad_signature_gets(service):
    body = json.dumps(hire("u-1", "U1", "Un", "Known", "Sales")).encode()
    bad_signature = await service.api.post("/hr/events", content=body, headers=service.signed(body, secret="wrong"))
    headers = service.signed(body)
    headers["X-HR-Source"] = "no-such-source"
    unknown = await service.api.post("/hr/events", content=body, headers=headers)
    assert bad_signature.status_code == unknown.status_code == 401
    assert bad_signature.json() == unknown.json()
    assert "no-such-source" not in unknown.text
    # A signed read (GET) likewise.
    get_headers = service.signed(b"GET /hr/events/u-1")
    get_headers["X-HR-Source"] = "no-such-source"
    unknown_get = await service.api.get("/hr/events/u-1", headers=get_headers)
    bad_get = await service.api.get("/hr/events/u-1", headers=service.signed(b"GET /hr/events/u-1", secret="x"))
    assert unknown_get.status_code == bad_get.status_code == 401 and unknown_get.json() == bad_get.json()
