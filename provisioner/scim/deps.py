"""FastAPI dependencies of the SCIM routes: the request's use-case context and its body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from provisioner.api.deps import SessionDep
from provisioner.scim.context import ScimContext, hook_from_state
from provisioner.scim.protocol import base_url, json_body


def scim_context(request: Request, session: SessionDep) -> ScimContext:
    """The session of the request (committed when the route returns), its base URL and the
    identity-change hook of the application."""
    return ScimContext(
        session=session,
        base_url=base_url(request),
        identity_changed=hook_from_state(request.app.state, session),
    )


def query_params(request: Request) -> dict[str, str]:
    """Query parameters, first value of each."""
    return dict(request.query_params)


ContextDep = Annotated[ScimContext, Depends(scim_context)]
BodyDep = Annotated[Any, Depends(json_body)]
QueryDep = Annotated[dict[str, str], Depends(query_params)]
