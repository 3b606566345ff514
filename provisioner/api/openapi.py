"""The served OpenAPI document (``GET /openapi.json``, browsable at ``/docs``): every route,
the SCIM endpoint under ``/scim/v2`` included, with its security schemes, request bodies and
problem answers.

FastAPI builds the routes' part; this adds what it cannot see: the security schemes, the
schemas named by :mod:`provisioner.api.responses` (request bodies read raw, ProblemDetails),
the SCIM sub-application's operations (:mod:`provisioner.scim.openapi`), and drops FastAPI's
automatic 422 answer, which this service never gives (validation errors are 400 problem+json).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from provisioner.api import responses
from provisioner.scim import openapi as scim_openapi

_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _, defs = models_json_schema([(m, "validation") for m in responses.REGISTERED],
                                 ref_template=responses.REF)
    schemas.update(defs.get("$defs", {}))
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
    for name in _FASTAPI_422:
        schemas.pop(name, None)
    scim_paths, scim_schemas = scim_openapi.document()
    doc["paths"].update(scim_paths)
    schemas.update(scim_schemas)
    components["securitySchemes"] = dict(responses.SECURITY_SCHEMES)
    doc.setdefault("tags", []).append(scim_openapi.TAG)
    return doc


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document (built once, on the first request) as the app's OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
