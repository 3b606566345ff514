"""Request bodies of the change-control API (their schemas are in the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from provisioner import limits

INT_MAX = limits.ROW_ID_MAX  # request ids are INTEGER columns (PostgreSQL refuses larger values)
RequestId = Annotated[int, Field(ge=1, le=INT_MAX)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionIn(_Body):
    """Approve or reject one request."""

    comment: str = Field(min_length=1, max_length=2000, description="why: recorded with the decision and audited")
    expires_at: AwareDatetime | None = Field(
        None, description="approve only: the access ends (is revoked) then; RFC 3339 with an offset")


class BulkDecisionIn(DecisionIn):
    """Approve or reject many requests: ``ids``, or ``all: true`` for every pending one."""

    decision: Literal["approve", "reject"]
    ids: list[RequestId] | None = Field(None, min_length=1, max_length=10_000)
    all: bool = False

    @model_validator(mode="after")
    def _ids_or_all(self) -> BulkDecisionIn:
        if (self.ids is None) == (not self.all):
            raise ValueError("give ids, or all: true")
        return self


class ExceptionIn(_Body):
    """A time-bound separation-of-duties exception for one person and rule."""

    employee_id: str = Field(min_length=1, max_length=200)
    rule: str = Field(min_length=1, max_length=100)
    comment: str = Field(min_length=1, max_length=2000)
    expires_at: AwareDatetime = Field(description="the exception ends and the excepted access is revoked then")


class ExceptionRevokeIn(_Body):
    employee_id: str = Field(min_length=1, max_length=200)
    rule: str = Field(min_length=1, max_length=100)
    comment: str = Field(min_length=1, max_length=2000)

