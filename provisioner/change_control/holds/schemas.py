"""What the holds API and CLI show: plain values built from the hold sets and their operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from provisioner import limits


class DecisionIn(BaseModel):
    """A release or cancel (of a hold set), an approval or rejection (of a rollout)."""

    comment: str | None = Field(None, max_length=2000, description="why: kept in the audit trail")


class HoldDecisionIn(DecisionIn):
    """A release or cancel of a hold set, whole or (``employee_ids``) for some of its people."""

    employee_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=limits.EMPLOYEE_ID)]] | None = Field(
        None, max_length=1000, description="only these people's held operations: they move to a hold set of their "
                                           "own, decided now; the others stay held (none: the whole set)")


class HeldOperation(BaseModel):
    id: int
    employee_id: str | None
    display_name: str | None
    kind: str
    group: str | None
    status: str
    reason: str | None


class HoldSetOut(BaseModel):
    id: int
    target: str
    cause: str
    status: str
    opened_at: datetime
    age_seconds: float
    people: int = Field(description="people with destructive work of this cause in the window when last crossed")
    population: int = Field(description="the target's managed accounts then")
    thresholds: dict[str, Any]
    held_operations: int
    held_people: int
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None


class HoldSetDetail(HoldSetOut):
    operations: list[HeldOperation]


class HoldDecisionOut(BaseModel):
    hold: HoldSetOut
    operations: int
    people: list[str]
