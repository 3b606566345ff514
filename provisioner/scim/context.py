"""What a SCIM use case runs with: the request's session, base URL and change hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import Context, Resource
from sqlalchemy.orm import Session

from provisioner.scim.errors import scim_exception_from_validation
from provisioner.scim.schemas import POLICY, strip_ignored_schemas

ModelT = TypeVar("ModelT", bound=Resource[Any])

IdentityChanged = Callable[[str], None]
"""Called with an identity id after a SCIM change that may alter its access."""


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
