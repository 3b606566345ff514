"""Target declarations: one YAML file per connected system under ``targets/``.

Secrets are never in these files: they name an environment variable or a file to read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from provisioner.identities import upn
from provisioner.identities.naming import DEFAULT_RESERVED
from provisioner.targets.declarations import (
    Deprovision,
    HoldCause,
    HoldLimit,
    ManagedGroup,
    SecretRef,
    Throttle,
    require_for_method,
)
from provisioner.targets.entra import mapping as entra_mapping
from provisioner.targets.scim.config import ScimTarget

__all__ = ["ConfigError", "Deprovision", "EntraAccounts", "EntraAuth", "EntraTarget", "ManagedGroup", "ScimTarget",
           "SecretRef", "TargetConfig", "Throttle", "load_target_file", "load_targets"]


class ConfigError(ValueError):
    """A target or policy file is invalid: carries ``file:line: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class EntraAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # client_secret | certificate | managed_identity: azure-identity credentials for a tenant.
    # static_token: a fixed bearer token (for the standalone Graph sandbox only).
    method: Literal["client_secret", "certificate", "managed_identity", "static_token"]
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    certificate_path: Path | None = None
    certificate_password: SecretRef | None = None
    token: SecretRef | None = None

    @model_validator(mode="after")
    def _complete(self) -> EntraAuth:
        require_for_method(self, self.method, {
            "client_secret": ("tenant_id", "client_id", "client_secret"),
            "certificate": ("tenant_id", "client_id", "certificate_path"),
            "managed_identity": (),
            "static_token": ("token",),
        })
        return self


class EntraAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str  # the verified domain for userPrincipalName and mail
    # Python format fields from identity attributes: given_name, family_name, preferred_name,
    # employee_id. Lower-cased and stripped of characters a UPN may not hold.
    login_template: str = "{given_name}.{family_name}"
    usage_location: str | None = None
    # Local parts no person is given (skipped as if taken: ``admin`` -> ``admin2``).
    reserved_logins: list[str] = Field(default_factory=lambda: list(DEFAULT_RESERVED))
    # A name change (given, family or preferred name, HR's preferred_login): ``keep`` the login
    # and mail, or ``rename`` (a new login is made, collision-checked, and the account's
    # userPrincipalName, mail and mailNickname are updated).
    on_name_change: Literal["keep", "rename"] = "keep"

    @field_validator("domain")
    @classmethod
    def _domain(cls, domain: str) -> str:
        problem = upn.domain_problem(domain)
        if problem:
            raise ValueError(problem)
        return domain.lower()


class EntraTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["entra"]
    name: str = "entra"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    auth: EntraAuth
    accounts: EntraAccounts
    # Graph user property -> template of HR attributes, over the defaults
    # (provisioner.targets.entra.mapping.DEFAULT_MAPPING); null stops writing a property.
    mapping: dict[str, str | None] = Field(default_factory=dict)
    # Write the manager (PUT /users/{id}/manager/$ref) from HR's manager_employee_id.
    manager: bool = True
    managed_groups: list[ManagedGroup] = Field(default_factory=list)
    # Accounts in a managed group the service has no link for: removed by `reconcile --fix`
    # (managed groups are the service's), or only reported.
    unknown_members: Literal["remove", "report"] = "remove"
    create_missing_groups: bool = False
    throttle: Throttle = Field(default_factory=Throttle)
    revoke_sessions: bool = True
    deprovision: Deprovision = Field(default_factory=Deprovision)
    holds: dict[HoldCause, HoldLimit] = Field(default_factory=dict)  # mass-change thresholds

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        return entra_mapping.check_mapping(value)

    def effective_mapping(self) -> dict[str, str]:
        return entra_mapping.effective_mapping(self.mapping, self.accounts.usage_location)

    def managed_group_names(self) -> list[str]:
        return [group.name for group in self.managed_groups]


TargetConfig = Annotated[EntraTarget | ScimTarget, Field(discriminator="kind")]


class _Holder(BaseModel):
    target: TargetConfig


def _line_of(text: str, key: str | int | None) -> int:
    if key is None:
        return 1
    needle = f"{key}:"
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(needle) or line.strip().startswith(f"- {needle}"):
            return number
    return 1


def load_target_file(path: Path) -> TargetConfig:
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
        raise ConfigError([f"{path}:{line}: not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: a target file holds one mapping (kind, name, ...)"])
    data.setdefault("name", path.stem)
    try:
        return _Holder(target=data).target
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [part for part in err["loc"] if part not in ("target", "entra", "scim")]
            key = next((p for p in reversed(loc) if isinstance(p, str)), None)
            where = ".".join(str(p) for p in loc) or "(file)"
            problems.append(f"{path}:{_line_of(text, key)}: {where}: {err['msg']}")
        raise ConfigError(problems) from exc


class _Named(Protocol):
    name: str


N = TypeVar("N", bound=_Named)


def load_folder(directory: Path, load: Callable[[Path], N], kind: str) -> dict[str, N]:
    """Every ``*.yaml`` under ``directory`` loaded by ``load``, by name; every problem of every
    file reported together (``ConfigError``), a name declared twice among them (targets, HR sources)."""
    found: dict[str, N] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            item = load(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if item.name in found:
            problems.append(f"{path}:1: {kind} name {item.name!r} is declared twice")
        found[item.name] = item
    if problems:
        raise ConfigError(problems)
    return found


def load_targets(directory: Path) -> dict[str, TargetConfig]:
    """Every ``*.yaml`` under ``directory``, by target name; all problems reported together."""
    return load_folder(directory, load_target_file, "target")
