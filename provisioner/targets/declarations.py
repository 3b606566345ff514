"""Pieces every target declaration shares: where a secret lives, the groups the service
manages, and how hard it may push the remote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def require_for_method(model: BaseModel, method: str, need: dict[str, tuple[str, ...]]) -> None:
    """Refuse an ``auth`` block missing what its ``method`` needs (one message for all)."""
    missing = [name for name in need[method] if getattr(model, name) is None]
    if missing:
        raise ValueError(f"auth method {method} needs: {', '.join(missing)}")


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable or a file (never the YAML itself)."""

    model_config = ConfigDict(extra="forbid")
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def read(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise RuntimeError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        value = self.file.read_text().strip()
        if not value:  # an empty secret would be a key anyone can sign or authenticate with
            raise RuntimeError(f"secret file {self.file} is empty")
        return value


class ManagedGroup(BaseModel):
    """A group the service manages in a target: it only ever removes memberships in these."""

    model_config = ConfigDict(extra="forbid")
    name: str
    id: str | None = None  # the target's object id, when known; otherwise resolved by name
    description: str | None = None
    # 'required': a sensitive group; every grant of it waits for an approver (provisioner/change_control).
    approval: Literal["required"] | None = None


class Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    writes_per_second: float = 20.0  # Graph: 3,000 writes per 150 s per app and tenant
    burst: int = 40
    concurrency: int = 4  # HTTP requests in flight at once


class Deprovision(BaseModel):
    """What happens to a leaver's account (RFC 7644 §3.6 leaves it to the client).

    ``disable`` sets it inactive (SCIM ``active=false``, Entra ``accountEnabled=false``);
    ``delete`` deletes it at once; ``disable_then_delete`` disables now and deletes it
    ``delete_after_days`` later, unless the person is rehired before then.
    """

    model_config = ConfigDict(extra="forbid")
    mode: Literal["disable", "delete", "disable_then_delete"] = "disable"
    delete_after_days: int | None = None

    @model_validator(mode="after")
    def _days(self) -> Deprovision:
        if self.mode == "disable_then_delete" and not (self.delete_after_days and self.delete_after_days > 0):
            raise ValueError("mode disable_then_delete needs delete_after_days (a positive number)")
        if self.mode != "disable_then_delete" and self.delete_after_days is not None:
            raise ValueError("delete_after_days is only used with mode disable_then_delete")
        return self


HoldCause = Literal["hr_termination", "snapshot_import", "policy_rollout", "reconcile_fix", "scim"]


class HoldLimit(BaseModel):
    """A target's own mass-change thresholds for one cause (``holds: {snapshot_import: {count:
    5, share: 0.01}}``), over the settings' (provisioner/change_control/holds)."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0)
    share: float = Field(ge=0.0, le=1.0)
