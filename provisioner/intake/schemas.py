"""The canonical HR event shape accepted at ``POST /hr/events`` (documented in README.md)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from provisioner.identities.lifecycle import EventType
from provisioner.jsonutil import canonical

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
]
Text = Annotated[str, StringConstraints(max_length=400, strip_whitespace=True)]
ExtraValue = str | int | float | bool | None


class HRAttributes(BaseModel):
    """HR-owned attributes. In an update only the attributes present change."""

    model_config = ConfigDict(extra="forbid")

    given_name: Text | None = None
    family_name: Text | None = None
    preferred_name: Text | None = None
    department: Text | None = None
    job_code: Text | None = None
    title: Text | None = None
    location: Text | None = None
    cost_center: Text | None = None
    manager_employee_id: Identifier | None = None
    employment_type: Text | None = None
    start_date: date | None = None
    end_date: date | None = None
    extra: dict[Annotated[str, StringConstraints(max_length=100)], ExtraValue] = Field(
        default_factory=dict, description="free extra attributes (policies may match on them)")

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end < start:
            raise ValueError(f"the end_date {end} is before the start_date {start}")
        return end


class HREventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Identifier
    type: EventType
    employee_id: Identifier
    effective_at: AwareDatetime = Field(description="RFC 3339 with a UTC offset")
    immediate: bool = Field(False, description="terminate now, ahead of all other work")
    cancels_event_id: Identifier | None = Field(None, description="for type=cancel: the event withdrawn")
    attributes: HRAttributes = Field(default_factory=HRAttributes)

    @model_validator(mode="after")
    def _consistent(self) -> HREventIn:
        if self.type == EventType.CANCEL and self.cancels_event_id is None:
            raise ValueError("cancels_event_id is required when type is 'cancel'")
        if self.type != EventType.CANCEL and self.cancels_event_id is not None:
            raise ValueError("cancels_event_id is only allowed when type is 'cancel'")
        if self.immediate and self.type != EventType.TERMINATE:
            raise ValueError("immediate is only allowed when type is 'terminate'")
        if self.type in (EventType.HIRE, EventType.REHIRE):
            missing = [n for n in ("given_name", "family_name")
                       if getattr(self.attributes, n) in (None, "")]
            if missing:
                raise ValueError(f"a {self.type} needs attributes.{' and attributes.'.join(missing)}")
        return self

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=False)

    def body_sha256(self) -> str:
        """Hash of the event's meaning, for idempotency: the same event sent again matches."""
        return hashlib.sha256(canonical(self.model_dump(mode="json", exclude_unset=True))).hexdigest()

    def set_attributes(self) -> dict[str, Any]:
        """Only the attributes the event carries (an update changes just these)."""
        return self.attributes.model_dump(mode="json", exclude_unset=True)


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[HREventIn] = Field(min_length=1)


class Receipt(BaseModel):
    """The answer for one event; a repeat of the same event gets the very same answer."""

    event_id: str
    status: str = "accepted"
    received_at: datetime
    effective_at: datetime
    duplicate: bool = Field(False, exclude=True)


class BatchReceipt(BaseModel):
    accepted: int
    duplicates: int
    receipts: list[Receipt]
