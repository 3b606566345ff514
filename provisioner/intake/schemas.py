"""The canonical HR event shape accepted at ``POST /hr/events`` (documented in README.md)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provisioner import limits
from provisioner.identities import upn
from provisioner.identities.lifecycle import EventType
from provisioner.jsonutil import canonical


def _storable(value: str) -> str:
    """Refuse what no column should hold: control characters (NUL too) and lone surrogates."""
    where = limits.refused_character(value)
    if where is not None:
        raise PydanticCustomError("refused_character", "control characters are not allowed ({where})",
                                  {"where": where})
    return value


def _text(max_length: int) -> Any:
    return Annotated[str, StringConstraints(max_length=max_length, strip_whitespace=True),
                     AfterValidator(_storable)]


def _identifier(max_length: int) -> Any:
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length,
                                            pattern=limits.IDENTIFIER_PATTERN)]


EventId = _identifier(limits.EVENT_ID)
EmployeeId = _identifier(limits.EMPLOYEE_ID)
GivenName = _text(limits.GIVEN_NAME)
FamilyName = _text(limits.FAMILY_NAME)
PreferredName = _text(limits.PREFERRED_NAME)
Department = _text(limits.DEPARTMENT)
JobCode = _text(limits.JOB_CODE)
Title = _text(limits.TITLE)
Location = _text(limits.LOCATION)
CostCenter = _text(limits.COST_CENTER)
EmploymentType = _text(limits.EMPLOYMENT_TYPE)


def _login(value: str) -> str | None:
    """HR's login override: the part before '@', as Entra ID and the service accept it."""
    if value == "":
        return None  # clears the override
    problem = upn.login_override_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_login", "{problem}", {"problem": problem})
    return value.lower()


PreferredLogin = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_login)]
ExtraKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.EXTRA_KEY), AfterValidator(_storable)]


def _extra_value(value: Any) -> Any:
    """One error per bad value (not one per member of the union)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > limits.EXTRA_VALUE:
            raise PydanticCustomError("string_too_long", "String should have at most {max_length} characters",
                                      {"max_length": limits.EXTRA_VALUE})
        return _storable(value)
    if isinstance(value, int):
        if not -limits.EXTRA_INT_MAX - 1 <= value <= limits.EXTRA_INT_MAX:
            raise PydanticCustomError("int_range", "integers must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("finite_number", "numbers must be finite")
        return value
    raise PydanticCustomError("extra_type", "a string, number, boolean or null (not an object or a list)")


ExtraValue = Annotated[str | int | float | bool | None, BeforeValidator(_extra_value)]


@dataclass(frozen=True, slots=True)
class EffectiveWindow:
    """How far ``effective_at`` may lie from now (PROVISIONER_HR_EFFECTIVE_PAST_DAYS / _FUTURE_DAYS).

    Pass it as the validation context ``{"window": ...}``; without it no window is checked
    (events the service makes itself)."""

    now: datetime
    past_days: int
    future_days: int

    def check(self, at: datetime) -> None:
        if at < self.now - timedelta(days=self.past_days):
            raise PydanticCustomError(
                "effective_too_old", "more than {days} days in the past (PROVISIONER_HR_EFFECTIVE_PAST_DAYS)",
                {"days": self.past_days})
        if at > self.now + timedelta(days=self.future_days):
            raise PydanticCustomError(
                "effective_too_late", "more than {days} days in the future (PROVISIONER_HR_EFFECTIVE_FUTURE_DAYS)",
                {"days": self.future_days})


def _required(event_type: str, *fields: str) -> PydanticCustomError:
    """An error of the event reported against each named field (see ``validation.field_errors``)."""
    return PydanticCustomError("required_for_type", "required for a {type}", {"type": event_type, "fields": fields})


def _not_allowed(field: str, why: str) -> PydanticCustomError:
    return PydanticCustomError("not_allowed", why, {"fields": (field,)})


class HRAttributes(BaseModel):
    """HR-owned attributes. In an update only the attributes present change. Lengths are the
    columns' (``provisioner/limits.py``)."""

    model_config = ConfigDict(extra="forbid")

    given_name: GivenName | None = None
    family_name: FamilyName | None = None
    preferred_name: PreferredName | None = None
    department: Department | None = None
    job_code: JobCode | None = None
    title: Title | None = None
    location: Location | None = None
    cost_center: CostCenter | None = None
    manager_employee_id: EmployeeId | None = None
    employment_type: EmploymentType | None = None
    start_date: date | None = None
    end_date: date | None = None
    preferred_login: PreferredLogin | None = Field(
        None, description="the login HR chose (the part before '@'), used instead of the login template: "
                          f"at most {limits.PREFERRED_LOGIN} letters, digits, '.', '-', '_'; a taken one gets "
                          "a suffix (2, 3, ...); an empty string clears it")
    extra: dict[ExtraKey, ExtraValue] = Field(
        default_factory=dict, max_length=limits.EXTRA_MAX_KEYS,
        description=f"free extra attributes (policies may match on them): at most {limits.EXTRA_MAX_KEYS} keys "
                    f"of {limits.EXTRA_KEY} characters, string values of {limits.EXTRA_VALUE}, "
                    f"{limits.EXTRA_TOTAL_BYTES} bytes in all as JSON")

    @field_validator("extra")
    @classmethod
    def _extra_size(cls, extra: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(extra, ensure_ascii=False).encode())
        if size > limits.EXTRA_TOTAL_BYTES:
            raise PydanticCustomError("extra_too_large", "{size} bytes as JSON, more than {max} in all",
                                      {"size": size, "max": limits.EXTRA_TOTAL_BYTES})
        return extra

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end < start:
            raise ValueError(f"the end_date {end} is before the start_date {start}")
        return end


class HREventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: EventId
    type: EventType
    employee_id: EmployeeId
    effective_at: AwareDatetime = Field(description="RFC 3339 with a UTC offset, within the configured window")
    immediate: bool = Field(False, description="terminate now, ahead of all other work")
    cancels_event_id: EventId | None = Field(None, description="for type=cancel: the event withdrawn")
    attributes: HRAttributes = Field(default_factory=HRAttributes)

    @field_validator("effective_at")
    @classmethod
    def _in_window(cls, at: datetime, info: ValidationInfo) -> datetime:
        window = (info.context or {}).get("window")
        if window is not None:
            window.check(at)
        return at

    @model_validator(mode="after")
    def _consistent(self) -> HREventIn:
        if self.type == EventType.CANCEL and self.cancels_event_id is None:
            raise _required(self.type.value, "cancels_event_id")
        if self.type != EventType.CANCEL and self.cancels_event_id is not None:
            raise _not_allowed("cancels_event_id", "only allowed when type is 'cancel'")
        if self.immediate and self.type != EventType.TERMINATE:
            raise _not_allowed("immediate", "only allowed when type is 'terminate'")
        if self.attributes.manager_employee_id is not None and self.attributes.manager_employee_id == self.employee_id:
            raise _not_allowed("attributes.manager_employee_id",
                               f"{self.employee_id!r} cannot be their own manager: give their manager's "
                               "employee_id, or leave manager_employee_id out")
        if self.type in (EventType.HIRE, EventType.REHIRE):
            missing = [f"attributes.{n}" for n in ("given_name", "family_name")
                       if getattr(self.attributes, n) in (None, "")]
            if missing:
                raise _required(self.type.value, *missing)
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
