"""Mount the SCIM 2.0 service-provider endpoint on the service's FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from provisioner.scim import (
    endpoints_bulk,
    endpoints_discovery,
    endpoints_groups,
    endpoints_search,
    endpoints_users,
)
from provisioner.scim.config import SCIM_PREFIX
from provisioner.scim.errors import install_error_handlers
from provisioner.scim.hot.middleware import ScimHotReads
from provisioner.scim.hot.routes import UsersReadFastPath
from provisioner.scim.responses import ScimJSONResponse


def create_scim_app(parent: FastAPI | None = None) -> FastAPI:
    """The SCIM sub-application.

    It shares the parent's ``state`` (``db``, ``on_identity_changed``), so attributes the owner
    sets on ``app.state`` after mounting are seen by SCIM requests too. Its error handlers make
    every error under the prefix a SCIM Error (RFC 7644 §3.12), leaving the parent's RFC 7807
    handlers alone.
    """
    scim = FastAPI(
        title="provisioner SCIM 2.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=ScimJSONResponse,
    )
    if parent is not None:
        scim.state = parent.state
    install_error_handlers(scim)
    scim.include_router(endpoints_discovery.router)
    scim.include_router(endpoints_search.router)
    scim.include_router(endpoints_bulk.router)
    scim.include_router(endpoints_users.router)
    scim.include_router(endpoints_groups.router)
    # Outermost: GET /Users and GET /Users/{id} skip FastAPI's routing (the read hot path).
    scim.add_middleware(UsersReadFastPath)
    return scim


def mount_scim(app: FastAPI) -> None:
    """Serve SCIM 2.0 at ``/scim/v2`` (Users, Groups, discovery, ``/.search``, ``/Bulk``).

    The application must have ``app.state.db`` (a :class:`~provisioner.db.Database`) when
    requests arrive; ``app.state.on_identity_changed(session, identity_id, "scim")``, when
    set, is called after every SCIM change to a user or a group membership.

    Plain user lookups (``userName``/``externalId``/``id eq``, ``userName sw``,
    ``GET /Users/{id}``) are answered by :class:`~provisioner.scim.hot.middleware.ScimHotReads`,
    a middleware of ``app``, before its routing; everything else reaches the sub-application.
    """
    app.mount(SCIM_PREFIX, create_scim_app(app))
    app.add_middleware(ScimHotReads, prefix=SCIM_PREFIX)
