"""The answer to a webhook post."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from provisioner.intake.schemas import Receipt


class IgnoredRecord(BaseModel):
    record: int = Field(description="the record's position in the payload (0 for a payload that is one record)")
    reason: str


class WebhookReceipt(BaseModel):
    """``accepted``: every mapped event is stored (or was already: ``duplicates``);
    ``ignored``: the payload held nothing to store (``ignored`` says why)."""

    status: Literal["accepted", "ignored"]
    accepted: int
    duplicates: int
    receipts: list[Receipt]
    ignored: list[IgnoredRecord] = Field(default_factory=list)
