"""What a SCIM use case runs with: the request's session, base URL and change hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from scim2_models import Context, Resource
from sqlalchemy.orm import Session

from provisioner.scim.errors import scim_exception_from_validation
from provisioner.scim.schemas import POLICY

ModelT = TypeVar("ModelT", bound=Resource[Any])

IdentityChanged = Callable[[str], None]
"""Called with an identity id after a SCIM change that may alter its access."""

ENTRA_GROUP_SCHEMA: Final = (
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
)
"""Entra ID adds this schema to ``POST /Groups``; it describes nothing the service stores."""

IGNORED_SCHEMAS: Final = frozenset({ENTRA_GROUP_SCHEMA.lower()})


@dataclass(slots=True)
class ScimContext:
    """One request (or one Bulk operation): services never commit, the boundary does."""

    session: Session
    base_url: str
    identity_changed: IdentityChanged

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: string operators are compiled per engine."""
        bind = self.session.get_bind()
        return bind.dialect.name


def hook_from_state(state: Any, session: Session) -> IdentityChanged:
    """Bind ``app.state.on_identity_changed(session, identity_id, "scim")`` if the owner set it.

    People created through SCIM are governed by policies like everyone else: the hook re-plans
    an identity's access after a SCIM create/update/delete or a membership change.
    """

    def changed(identity_id: str) -> None:
        hook = getattr(state, "on_identity_changed", None)
        if hook is not None:
            hook(session, identity_id, "scim")

    return changed


def parse_resource(model: type[ModelT], payload: Any, scim_ctx: Context) -> ModelT:
    """Validate a request body as a resource, in the context of its operation (RFC 7644 §3.3,
    §3.5.1); readOnly attributes in it are ignored, a bad value is 400 with its scimType."""
    try:
        return model.model_validate(
            strip_ignored_schemas(payload), scim_ctx=scim_ctx, scim_policy=POLICY
        )
    except ValidationError as exc:
        raise scim_exception_from_validation(exc) from exc


def strip_ignored_schemas(payload: Any) -> Any:
    """Drop schemas the service accepts but ignores (Entra ID's ADSCIM Group schema on POST)."""
    if not isinstance(payload, dict):
        return payload
    schemas = payload.get("schemas")
    if isinstance(schemas, list) and any(
        isinstance(s, str) and s.lower() in IGNORED_SCHEMAS for s in schemas
    ):
        payload = {k: v for k, v in payload.items() if k.lower() not in IGNORED_SCHEMAS}
        payload["schemas"] = [
            s for s in schemas if not (isinstance(s, str) and s.lower() in IGNORED_SCHEMAS)
        ]
    return payload
