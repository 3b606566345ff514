"""The ``webhook:`` section of an HR source file: how the HR system's own JSON payload becomes
HR events, every expression a jmespath expression (https://jmespath.org), compiled when the file
is loaded so a syntax error is a ``file:line`` error like any other.

::

    webhook:
      signature: {scheme: hibob, secret: {env: PROVISIONER_HR_WEBHOOK_SECRET_HIBOB}}
      records: null                  # optional: where the list of records is (default: the payload is one)
      event_id: null                 # optional: default "<source>:" + sha256 of the record
      employee_id: data.employeeId
      type: type                     # its value is looked up in type_map
      type_map: {employee.left: terminate, employee.created: ignore}
      effective_at: triggeredAt
      effective_timezone: Europe/Berlin   # for a date, or a date-time without offset
      attributes: {end_date: data.effectiveDate}
      extra: {bob_company: to_string(companyId)}

Expressions of ``event_id``, ``employee_id``, ``type``, ``effective_at``, ``attributes`` and
``extra`` are evaluated on one record; ``records`` on the whole payload.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from provisioner.identities.lifecycle import EventType
from provisioner.intake.schemas import HRAttributes
from provisioner.targets.declarations import SecretRef

IGNORE = "ignore"
"""A ``type_map`` value: records with this type are answered 202 and not stored."""

MAPPED_TYPES = tuple(t.value for t in EventType if t != EventType.CANCEL)
ATTRIBUTES = tuple(name for name in HRAttributes.model_fields if name != "extra")


def _compiles(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        where = getattr(exc, "lex_position", None)
        at = f" at character {where + 1}" if isinstance(where, int) else ""
        msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0]
        raise ValueError(f"not a valid jmespath expression{at}: {msg} in {expression!r}") from None
    return expression


def _event_type(value: str) -> str:
    if value not in (*MAPPED_TYPES, IGNORE):
        raise ValueError(f"{value!r} is not an event type: one of {', '.join(MAPPED_TYPES)}, or {IGNORE!r}")
    return value


def _attribute(name: str) -> str:
    if name not in ATTRIBUTES:
        hint = " (free attributes go under 'extra')" if name != "extra" else " (use the 'extra' section)"
        raise ValueError(f"{name!r} is not an HR attribute: one of {', '.join(ATTRIBUTES)}{hint}")
    return name


Expression = Annotated[str, Field(min_length=1), AfterValidator(_compiles)]
MappedType = Annotated[str, AfterValidator(_event_type)]
AttributeName = Annotated[str, AfterValidator(_attribute)]


class Scheme(StrEnum):
    BAMBOOHR = "bamboohr"  # hex HMAC-SHA256(key, body + X-BambooHR-Timestamp) in X-BambooHR-Signature
    HIBOB = "hibob"  # Base64 HMAC-SHA512(secret, body) in Bob-Signature
    HMAC_SHA256 = "hmac-sha256"  # hex (or base64) HMAC-SHA256(secret, body) in `header`, "sha256=" optional


class Signature(BaseModel):
    """How the HR system signs its posts. The secret is named (an environment variable or a
    file), never written in the source file."""

    model_config = ConfigDict(extra="forbid")
    scheme: Scheme
    secret: SecretRef
    header: str | None = Field(None, description="hmac-sha256 only: the header carrying the signature")
    encoding: Literal["hex", "base64"] = "hex"
    tolerance_seconds: int | None = Field(
        None, ge=1, description="bamboohr: how far X-BambooHR-Timestamp may be from now "
                                "(default PROVISIONER_SIGNATURE_TOLERANCE_SECONDS)")

    @field_validator("secret", mode="before")
    @classmethod
    def _named_not_written(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("never write the secret in the file: name where it is, "
                             "{env: VARIABLE} or {file: /path/to/secret}")
        return value

    @model_validator(mode="after")
    def _header(self) -> Signature:
        if self.scheme == Scheme.HMAC_SHA256 and not self.header:
            raise ValueError("the hmac-sha256 scheme needs 'header': the header the signature comes in")
        if self.scheme != Scheme.HMAC_SHA256 and (self.header is not None or self.encoding != "hex"):
            raise ValueError(f"'header' and 'encoding' are fixed by the {self.scheme.value} scheme: leave them out")
        return self


class WebhookMapping(BaseModel):
    """``POST /hr/webhooks/{name}``: the HR system's own payload, mapped by jmespath."""

    model_config = ConfigDict(extra="forbid")
    signature: Signature
    records: Expression | None = None
    event_id: Expression | None = None
    employee_id: Expression
    type: Expression
    type_map: dict[str, MappedType] = Field(default_factory=dict)
    effective_at: Expression
    effective_timezone: str | None = None
    attributes: dict[AttributeName, Expression] = Field(default_factory=dict)
    extra: dict[str, Expression] = Field(default_factory=dict)
    _compiled: dict[str, ParsedResult] = PrivateAttr(default_factory=dict)

    @field_validator("type_map", mode="before")
    @classmethod
    def _keys_as_json(cls, value: Any) -> Any:
        """Status codes may be numbers or booleans in YAML (``3: terminate``): keys are the
        value's JSON text, as the payload's value is looked up (``3`` -> ``"3"``, ``true``)."""
        if isinstance(value, dict):
            return {json.dumps(k) if isinstance(k, (bool, int, float)) else k: v for k, v in value.items()}
        return value

    @field_validator("effective_timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        fields = {"records": self.records, "event_id": self.event_id, "employee_id": self.employee_id,
                  "type": self.type, "effective_at": self.effective_at,
                  **{f"attributes.{k}": v for k, v in self.attributes.items()},
                  **{f"attributes.extra.{k}": v for k, v in self.extra.items()}}
        self._compiled = {name: jmespath.compile(expr) for name, expr in fields.items() if expr is not None}

    def expression(self, field: str) -> ParsedResult | None:
        """The compiled expression of ``field`` (``type``, ``attributes.given_name``, ...)."""
        return self._compiled.get(field)

    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.effective_timezone) if self.effective_timezone else None
