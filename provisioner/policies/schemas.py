"""Role policy files (``policies/*.yaml``): conditions on identity attributes and lifecycle state,
and what they grant in each target.

    name: engineering
    description: Engineers get the engineering groups
    when:
      all:
        - {attribute: department, equals: Engineering}
        - not: {attribute: employment_type, one_of: [contractor, intern]}
    states: [active, on_leave]
    grants:
      entra: {groups: [Engineering, GitHub Users]}

``birthright: true`` applies a policy to everyone (no ``when``).

Change control (``provisioner/change_control``): a grant with ``approval: required`` waits for an
approver before it reaches the target; ``conflicts`` declares groups nobody may hold together
(separation of duties). A file may hold only ``conflicts`` (no ``when`` nor ``grants``)::

    name: payments-sod
    conflicts:
      - name: pay-and-approve
        groups: [{target: entra, group: Finance}, {target: wiki, group: Wiki Editors}]
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from provisioner.identities.lifecycle import State

ATTRIBUTES = (
    "employee_id", "given_name", "family_name", "preferred_name", "department", "job_code", "title",
    "location", "cost_center", "manager_employee_id", "employment_type", "source",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """A test of one attribute: exactly one of equals, one_of, prefix. ``extra.NAME`` reads a
    free HR attribute. Comparisons ignore case."""

    attribute: str
    equals: str | int | bool | None = None
    one_of: list[str | int] | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Match:
        tests = [n for n in ("equals", "one_of", "prefix") if n in self.model_fields_set]
        if len(tests) != 1:
            raise ValueError("give exactly one of equals, one_of or prefix")
        if self.attribute not in ATTRIBUTES and not self.attribute.startswith("extra."):
            raise ValueError(
                f"unknown attribute {self.attribute!r}; use one of {', '.join(ATTRIBUTES)} or extra.NAME")
        return self


class AllOf(_Strict):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)


class Not(_Strict):
    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str:
    """Pick the condition model from its key, so errors speak of that model alone."""
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "match"
    return {AllOf: "all", AnyOf: "any", Not: "not"}.get(type(value), "match")


Condition = Annotated[
    Annotated[Match, Tag("match")] | Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(_condition_kind),
]


class TargetGrant(_Strict):
    groups: list[str] = Field(default_factory=list)
    approval: Literal["required"] | None = Field(
        None, description="'required': these grants wait for an approver before they reach the target")


class GroupRef(_Strict):
    target: str
    group: str


class Conflict(_Strict):
    """Separation of duties: nobody may hold two of these groups at once (across targets too)."""

    name: str = Field(min_length=1, max_length=100)
    description: str | None = None
    groups: list[GroupRef] = Field(min_length=2)


class Policy(_Strict):
    name: str
    description: str | None = None
    birthright: bool = False
    when: Condition | None = None
    states: list[Literal["pre_hire", "active", "on_leave"]] = Field(
        default_factory=lambda: [State.ACTIVE.value, State.ON_LEAVE.value],
        description="lifecycle states in which the grants apply (never 'terminated')")
    grants: dict[str, TargetGrant] = Field(default_factory=dict)
    conflicts: list[Conflict] = Field(default_factory=list)

    @model_validator(mode="after")
    def _when_or_birthright(self) -> Policy:
        if not self.grants and self.conflicts and not self.birthright and self.when is None:
            return self  # a file of separation-of-duties rules only
        if not self.grants and "grants" not in self.model_fields_set:
            raise ValueError("give 'grants' (or only 'conflicts', for separation-of-duties rules)")
        if self.birthright and self.when is not None:
            raise ValueError("a birthright policy applies to everyone: remove 'when'")
        if not self.birthright and self.when is None:
            raise ValueError("give 'when' conditions, or set 'birthright: true'")
        return self


for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def attribute_value(attrs: dict[str, Any], name: str) -> Any:
    if name.startswith("extra."):
        return (attrs.get("extra") or {}).get(name.removeprefix("extra."))
    return attrs.get(name)
