"""``POST /hr/bulkUpload`` refuses what it cannot take whole, storing nothing: a bad record
(SCIM errors per operation naming the attribute), too many operations, the wrong media type, and
tokens that are not this source's."""

from __future__ import annotations

from sqlalchemy import func, select

from provisioner.intake.models import HREvent
from provisioner.tokens.service import create_token, hr_source_scope, revoke_token
from tests.hr_sources.bulk.bulk_requests import CUSTOM, ENTERPRISE, SOURCE, body, bulk, leaver, worker
from tests.hr_sources.bulk.test_bulk_upload import SCIM, stored, upload


def errors_by_op(resp) -> list[tuple[str, str]]:
    return [(o["status"], o["response"]["detail"]) for o in resp.json()["Operations"]]


async def test_one_bad_record_stores_nothing_and_names_operation_and_attribute(bulk_service, bulk_token):
    svc = bulk_service
    bad = worker("E3", "", "Turing")  # a hire needs a given name
    request = bulk(worker("E1", "Ada", "Lovelace"), worker("E2", "Grace", "Hopper"), worker("E9", "Joan", "Clarke"),
                   bad)
    resp = await upload(svc, bulk_token, request)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith(SCIM)
    ops = resp.json()["Operations"]
    assert [o["status"] for o in ops] == ["412", "412", "412", "400"]
    error = ops[3]["response"]
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["scimType"] == "invalidValue"
    assert error["detail"] == "Operations[3].data.name.givenName: required for a hire"
    assert "Operations[3] refused" in ops[0]["response"]["detail"]
    assert stored(svc) == 0

    # Several kinds at once, each named where it is in the request.
    many = bulk(worker("E1", "Ada", "Lovelace", HireDate="soon"),
                {**worker("E2", "Grace", "Hopper"), "active": "yes"},
                {**worker("E3", "Alan", "Turing"), "externalId": None, ENTERPRISE: {"department": "Sales"}},
                worker("E4", "Joan", "Clarke", manager="E4"),
                worker("E1", "Ada", "Lovelace"))
    many["Operations"].append({"method": "DELETE", "bulkId": "x", "path": "/Users", "data": {}})
    resp = await upload(svc, bulk_token, many)
    assert resp.status_code == 400
    details = [d for _, d in errors_by_op(resp)]
    assert details[0].startswith(f"Operations[0].data.{CUSTOM}:HireDate: a date (2026-03-01)")
    assert details[1] == "Operations[1].data.active: true or false, not 'yes'"
    assert details[2].startswith("Operations[2].data.externalId: required: the worker's employee id")
    assert details[3].startswith(f"Operations[3].data.{ENTERPRISE}:manager.value: 'E4' cannot be their own manager")
    assert details[4].startswith("Operations[4].data.externalId: 'E1' is also the worker of Operations[0]")
    assert details[5].startswith("Operations[5].method: Input should be 'POST'")
    assert stored(svc) == 0


async def test_a_minimal_update_for_an_unknown_worker_names_the_missing_name(bulk_service, bulk_token):
    resp = await upload(bulk_service, bulk_token, bulk({"schemas": [], "externalId": "N1", "active": True}))
    assert resp.status_code == 400
    details = resp.json()["Operations"][0]["response"]["detail"]
    assert "Operations[0].data.schemas: must list 'urn:ietf:params:scim:schemas:core:2.0:User'" in details
    good = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "N1", "active": True}
    resp = await upload(bulk_service, bulk_token, bulk(good))
    assert resp.json()["Operations"][0]["response"]["detail"] == (
        "Operations[0].data.name.givenName: required for a hire; "
        "Operations[0].data.name.familyName: required for a hire")


async def test_envelope_problems(bulk_service, bulk_token):
    svc = bulk_service
    too_many = bulk(*[worker(f"T{i}", "Ada", "Lovelace") for i in range(51)])
    resp = await upload(svc, bulk_token, too_many)
    assert resp.status_code == 413
    assert resp.headers["content-type"].startswith(SCIM)
    assert resp.json()["scimType"] == "tooMany" and "at most 50 per request, not 51" in resp.json()["detail"]
    fifty = bulk(*[worker(f"T{i}", "Ada", "Lovelace") for i in range(50)])
    assert (await upload(svc, bulk_token, fifty)).status_code == 202  # 50 is fine
    wrong = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}
    resp = await upload(svc, bulk_token, wrong)
    assert resp.status_code == 400 and resp.json()["detail"].startswith("schemas: must list")
    resp = await svc.api.post("/hr/bulkUpload", content=b"{not json", headers={
        "Authorization": f"Bearer {bulk_token}", "Content-Type": SCIM})
    assert resp.status_code == 400 and resp.json()["scimType"] == "invalidSyntax"
    assert stored(svc) == 50


async def test_media_type(bulk_service, bulk_token):
    request = bulk(worker("M1", "Ada", "Lovelace"))
    resp = await upload(bulk_service, bulk_token, request, content_type="text/plain")
    assert resp.status_code == 415
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "Content-Type: send application/scim+json" in resp.json()["detail"]
    assert stored(bulk_service) == 0
    assert (await upload(bulk_service, bulk_token, request, content_type="application/json")).status_code == 202


async def test_tokens_of_another_scope_or_source_are_refused(bulk_service, bulk_token):
    svc = bulk_service
    with svc.db.transaction() as session:
        admin = create_token(session, "an-admin", {"admin"})
        scim = create_token(session, "a-scim-client", {"scim:read", "scim:write"})
        other = create_token(session, "other-source", {hr_source_scope("other")})
        undeclared = create_token(session, "undeclared", {hr_source_scope("payroll")})
    request = bulk(worker("S1", "Ada", "Lovelace"))
    assert (await upload(svc, "pvt_nope", request)).status_code == 401
    no_header = await svc.api.post("/hr/bulkUpload", content=body(request), headers={"Content-Type": SCIM})
    assert no_header.status_code == 401 and no_header.headers["www-authenticate"] == "Bearer"
    for token, why in ((admin, "not an HR source's token"), (scim, "not an HR source's token"),
                       (undeclared, "'payroll' declares no bulk_upload section")):
        resp = await upload(svc, token, request)
        assert resp.status_code == 403, resp.text
        assert why in resp.json()["detail"]
    assert stored(svc) == 0

    # The other source may post, but reads only its own events.
    ok = await upload(svc, bulk_token, request)
    location = ok.json()["Operations"][0]["location"]
    assert (await svc.api.get(location, headers={"Authorization": f"Bearer {other}"})).status_code == 403
    assert (await svc.api.get(location.replace(SOURCE, "other"),
                              headers={"Authorization": f"Bearer {other}"})).status_code == 404
    assert (await svc.api.get(location, headers={"Authorization": f"Bearer {admin}"})).status_code == 403

    with svc.db.transaction() as session:
        revoke_token(session, "entra-inbound-1")
    assert (await upload(svc, bulk_token, bulk(leaver("S1")))).status_code == 401
    with svc.db.read() as session:
        assert session.scalar(select(func.count()).select_from(HREvent)) == 1


async def test_a_body_over_the_limit_is_refused_before_the_token(bulk_service):
    limit = bulk_service.settings.hr_max_body_bytes
    resp = await bulk_service.api.post("/hr/bulkUpload", content=b" " * (limit + 1),
                                       headers={"Content-Type": SCIM})  # no token at all: 413 comes first
    assert resp.status_code == 413
    assert f"at most {limit} bytes" in resp.json()["detail"]
    assert stored(bulk_service) == 0
