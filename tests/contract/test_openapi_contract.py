"""The API contract: schemathesis runs every operation of the served OpenAPI document
(``GET /openapi.json``, the SCIM endpoint under ``/scim/v2`` included) against the whole
service in-process (ASGI, no network), on SQLite and PostgreSQL.

Requests carry what the document says each operation needs: the HMAC headers of an HR source
(computed by the ``before_call`` hook over the exact body or request target sent) and bearer
tokens for the admin, auditor and SCIM operations. Both positive and negative cases are
generated (hypothesis, derandomized, ``MAX_EXAMPLES`` per operation and mode), and every response
must pass: no 5xx, a status code the document declares, a body matching the declared schema.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from provisioner.demo.harness import HR_SOURCE, SandboxedService
from provisioner.intake import fate, signing
from provisioner.tokens.service import create_token
from tests.support import hire

MAX_EXAMPLES = 5  # per operation and mode: about 260 cases, < 1 min per engine
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

# What the hook signs with and which token each security scheme gets; set by the fixture.
_CREDENTIALS: dict[str, str] = {}
_CASES: list[str] = []
_STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)


def _raw_body(kwargs: dict[str, Any]) -> bytes:
    """The body exactly as it will be sent (the hook passes it as ``data``, so nothing re-encodes it)."""
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode()


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Authenticate each request as the document's ``security`` for its operation says."""
    if not _CREDENTIALS:
        return
    _CASES.append(f"{case.method} {case.operation.path}")
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    headers = dict(case.headers or {})
    if "hrSignature" in schemes:
        serialized = case.as_transport_kwargs(base_url="http://testserver")
        if case.method.upper() == "GET":
            sent = requests.Request("GET", serialized["url"], params=serialized.get("params")).prepare()
            message = fate.read_message("GET", sent.path_url)
        else:
            message = _raw_body(serialized)
            kwargs["data"] = message
        timestamp = int(time.time())
        headers.update({signing.SOURCE_HEADER: HR_SOURCE, signing.TIMESTAMP_HEADER: str(timestamp),
                        signing.SIGNATURE_HEADER: signing.sign(_CREDENTIALS["hr_secret"], timestamp, message)})
    for scheme in ("adminToken", "auditorToken", "approverToken", "readerToken", "scimToken", "hrSourceToken"):
        if scheme in schemes:
            headers["Authorization"] = f"Bearer {_CREDENTIALS[scheme]}"
    case.headers = headers


@pytest.fixture
async def api_schema(service: SandboxedService) -> AsyncIterator[Any]:
    """The schema loaded from the running app's /openapi.json, with some data to read back."""
    with service.db.transaction() as session:
        tokens = {"adminToken": create_token(session, "contract-admin", {"admin"}),
                  "auditorToken": create_token(session, "contract-auditor", {"auditor"}),
                  "approverToken": create_token(session, "contract-approver", {"approver"}),
                  "readerToken": create_token(session, "contract-viewer", {"viewer"}),
                  "scimToken": create_token(session, "contract-scim", {"scim:read", "scim:write"}),
                  "hrSourceToken": create_token(session, "contract-hr-source", {f"hr:{HR_SOURCE}"})}
    assert (await service.send(hire("contract-1", "C1", "Ada", "Lovelace", "Finance"))).status_code == 202
    await service.drain()
    scim = {"Authorization": f"Bearer {tokens['scimToken']}"}
    user = await service.api.post("/scim/v2/Users", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "grace@example.com",
        "name": {"givenName": "Grace", "familyName": "Hopper"}, "active": True})
    assert user.status_code == 201, user.text
    group = await service.api.post("/scim/v2/Groups", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "contract-group",
        "members": [{"value": user.json()["id"]}]})
    assert group.status_code == 201, group.text
    # schemathesis calls the app on its own event loop: the group-commit writer starts anew there.
    await service.app.state.intake_writer.aclose()
    _CREDENTIALS.update(tokens, hr_secret=service.hr_secret)
    _CASES.clear()
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", service.app)
    finally:
        _CREDENTIALS.clear()
        schemathesis_asgi.shutdown_lifespans()
        print(f"\nschemathesis: {len(_CASES)} cases over {len(set(_CASES))} operations")
        for label, statuses in sorted(_STATUSES.items()):
            print(f"  {label}: {dict(sorted(statuses.items()))}")
        _STATUSES.clear()


def _run(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> None:
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call()
        _STATUSES[f"{case.method} {case.operation.path}"][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_keeps_its_contract(api_schema: Any) -> None:
    """Every operation, positive and negative cases; all failures are reported together."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                _run(operation, mode)
            except Unsatisfiable:  # no parameters and no body: nothing to make invalid
                continue
            except (Exception, FailureGroup) as exc:  # a check failed: report it with the others
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert len(operations) >= 19
    assert not failures, "\n\n".join(failures)


async def test_the_document_declares_security_bodies_and_problem_answers(service: SandboxedService) -> None:
    """What schemathesis relies on, read from the served document itself."""
    resp = await service.api.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    schemes = doc["components"]["securitySchemes"]
    assert {schemes[n]["name"] for n in ("hrSource", "hrTimestamp", "hrSignature")} == {
        "X-HR-Source", "X-HR-Timestamp", "X-HR-Signature"}
    assert all(schemes[n] == {**schemes[n], "type": "http", "scheme": "bearer"}
               for n in ("adminToken", "auditorToken", "scimToken"))
    paths = doc["paths"]
    post = paths["/hr/events"]["post"]
    assert post["security"] == [{"hrSource": [], "hrTimestamp": [], "hrSignature": []}]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"oneOf": [
        {"$ref": "#/components/schemas/HREventIn"}, {"$ref": "#/components/schemas/EventBatchIn"}]}
    assert {"400", "401", "409", "413", "415"} <= set(post["responses"])
    assert paths["/evidence/revocations"]["get"]["security"] == [{"auditorToken": []}]
    assert "text/csv" in paths["/evidence/revocations"]["get"]["responses"]["200"]["content"]
    assert paths["/identities/{employee_id}/plan"]["get"]["security"] == [{"adminToken": []}]
    assert {"/scim/v2/Users", "/scim/v2/Users/{user_id}", "/scim/v2/Groups", "/scim/v2/Bulk",
            "/scim/v2/.search", "/scim/v2/ServiceProviderConfig"} <= set(paths)
    for path, item in paths.items():
        for method, op in item.items():
            assert "422" not in op["responses"], f"{method} {path}: FastAPI's 422 is never answered"
            if path.startswith(("/hr/", "/evidence/", "/identities/", "/scim/v2/")):
                assert op.get("security"), f"{method} {path}: no security requirement"
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")) and (path, code) != ("/readyz", "503"):  # the readiness report
                    scim = path.startswith("/scim/v2") or (path, code) in (("/hr/bulkUpload", "400"),
                                                                          ("/hr/bulkUpload", "413"))
                    media = "application/scim+json" if scim else "application/problem+json"
                    assert set(answer["content"]) == {media}, f"{method} {path} {code}"
