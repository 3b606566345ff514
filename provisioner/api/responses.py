"""The API contract's shared declarations: problem+json answers, security requirements and
request bodies, for routes to name in ``responses=`` and ``openapi_extra=``.

Routes stay thin: ``responses=problems(400, 401, 409)`` declares each answer an
``application/problem+json`` body of :class:`ProblemDetails`; ``openapi_extra=contract(
security=HR_SIGNED, body=(HREventIn, EventBatchIn))`` declares who may call and what the body
is, even for an endpoint that reads the raw body itself (to check its signature first).
:func:`provisioner.api.openapi.install` puts the schemas named here into the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from provisioner.api.problems import PROBLEM

REF = "#/components/schemas/{model}"


class FieldError(BaseModel):
    field: str = Field(description="the field, as a dotted path (`events.3.attributes.family_name`)")
    message: str


class ProblemDetails(BaseModel):
    """An RFC 7807 problem; a validation problem lists every field in ``errors``."""

    model_config = ConfigDict(extra="allow", title="ProblemDetails")

    type: str = Field("about:blank", description="a URN naming the kind of problem, or about:blank")
    title: str
    status: int
    detail: str = Field(description="what is wrong, naming the field (`field: message`)")
    instance: str | None = Field(None, description="the request path")
    errors: list[FieldError] | None = Field(None, description="every invalid field (validation problems)")


DESCRIPTIONS = {
    400: "Invalid request: the problem names the field (`errors` lists every one)",
    401: "Missing or invalid credentials",
    403: "The credentials lack the scope this operation needs",
    404: "No such resource",
    409: "Conflict with what is stored",
    413: "The request body (or batch) is larger than the limit",
    415: "The request body is not application/json",
    503: "Not available now (or not configured): the problem says why",
}

# Models whose schemas the document carries under components/schemas (request bodies, problems).
REGISTERED: list[type[BaseModel]] = [ProblemDetails]


def problems(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for problem+json answers: ``problems(400, 401, s404="No such event")``."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {
            "description": descriptions.get(f"s{code}", DESCRIPTIONS.get(code, "Problem")),
            "content": {PROBLEM: {"schema": {"$ref": REF.format(model="ProblemDetails")}}},
        }
    return out


# -- security ------------------------------------------------------------------------------------
# Bearer tokens are issued with `provisioner token create` / `provisioner scim token create`.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "adminToken": {"type": "http", "scheme": "bearer",
                   "description": "An API token with the `admin` scope (`provisioner token create NAME --scope admin`)."},
    "auditorToken": {"type": "http", "scheme": "bearer",
                     "description": "An API token with the `auditor` (or `admin`) scope."},
    "approverToken": {"type": "http", "scheme": "bearer",
                      "description": "An API token with the `approver` (or `admin`) scope: decides approvals, "
                                     "separation-of-duties exceptions, held mass changes and policy rollouts (`provisioner token create NAME "
                                     "--scope approver`)."},
    "readerToken": {"type": "http", "scheme": "bearer",
                    "description": "An API token with the `viewer`, `auditor`, `approver` or `admin` scope."},
    "scimToken": {"type": "http", "scheme": "bearer",
                  "description": "A SCIM token (`provisioner scim token create NAME --scope read|read-write`): "
                                 "reads need `scim:read`, writes `scim:write`."},
    "hrSourceToken": {"type": "http", "scheme": "bearer",
                      "description": "An HR source's token, scope `hr:<source>` (`provisioner hr-sources token issue "
                                     "SOURCE`): bulk uploads and reading their events back, that source only."},
    "metricsToken": {"type": "http", "scheme": "bearer",
                     "description": "`PROVISIONER_METRICS_TOKEN`, or an admin API token (`/metrics` only; "
                                    "`PROVISIONER_METRICS_PUBLIC=true` opens it)."},
    "hrSource": {"type": "apiKey", "in": "header", "name": "X-HR-Source",
                 "description": "The HR source's name; it selects the shared secret "
                                "(`PROVISIONER_HR_SECRETS`)."},
    "hrTimestamp": {"type": "apiKey", "in": "header", "name": "X-HR-Timestamp",
                    "description": "Unix seconds when the request was signed; more than the tolerance "
                                   "(300 s) from the server's clock is refused."},
    "hrSignature": {"type": "apiKey", "in": "header", "name": "X-HR-Signature",
                    "description": "`sha256=` + hex HMAC-SHA256(secret, `\"{timestamp}.\"` + the raw body); "
                                   "for a GET the body is `\"GET <path>[?<query>]\"` as sent."},
    "bambooHRSignature": {"type": "apiKey", "in": "header", "name": "X-BambooHR-Signature",
                          "description": "`POST /hr/webhooks/{source}` of a `bamboohr` source: hex HMAC-SHA256 "
                                         "(the webhook's private key) over the raw body followed by the timestamp."},
    "bambooHRTimestamp": {"type": "apiKey", "in": "header", "name": "X-BambooHR-Timestamp",
                          "description": "When BambooHR signed (more than the tolerance from now is refused)."},
    "bobSignature": {"type": "apiKey", "in": "header", "name": "Bob-Signature",
                     "description": "`POST /hr/webhooks/{source}` of a `hibob` source: Base64 HMAC-SHA512 (the "
                                    "webhook's secret) over the raw body. An `hmac-sha256` source names its own header."},
}
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
AUDITOR: list[dict[str, list[str]]] = [{"auditorToken": []}]
APPROVER: list[dict[str, list[str]]] = [{"approverToken": []}]
READER: list[dict[str, list[str]]] = [{"readerToken": []}]
SCIM: list[dict[str, list[str]]] = [{"scimToken": []}]
APPROVER: list[dict[str, list[str]]] = [{"approverToken": []}]
READER: list[dict[str, list[str]]] = [{"readerToken": []}]
METRICS: list[dict[str, list[str]]] = [{"metricsToken": []}, {"adminToken": []}]
HR_SIGNED: list[dict[str, list[str]]] = [{"hrSource": [], "hrTimestamp": [], "hrSignature": []}]
HR_WEBHOOK: list[dict[str, list[str]]] = [{"bambooHRSignature": [], "bambooHRTimestamp": []}, {"bobSignature": []}]
HR_BULK: list[dict[str, list[str]]] = [{"hrSourceToken": []}]


def contract(*, security: list[dict[str, list[str]]] | None = None,
             body: tuple[type[BaseModel], ...] = (), body_description: str | None = None,
             media: str = "application/json", extra_models: tuple[type[BaseModel], ...] = ()) -> dict[str, Any]:
    """``openapi_extra=``: the security requirement and, for an endpoint reading its raw body,
    the body it accepts (one of ``body``, as ``media``); ``extra_models``: schemas its answers name."""
    extra: dict[str, Any] = {}
    if security is not None:
        extra["security"] = security
    for model in extra_models:
        if model not in REGISTERED:
            REGISTERED.append(model)
    if body:
        for model in body:
            if model not in REGISTERED:
                REGISTERED.append(model)
        refs = [{"$ref": REF.format(model=m.__name__)} for m in body]
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        extra["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
        if body_description:
            extra["requestBody"]["description"] = body_description
    return extra
