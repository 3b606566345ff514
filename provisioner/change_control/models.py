"""Access waiting for a person's decision: approval requests and separation-of-duties flags.

One row per (person, target, group) each time such a grant is planned and has no decision that
covers it. The latest row of a key decides (``approvals_gate``); the rows before it are the
history. Every decision is also in the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
from provisioner.db import Base, JSONType, UTCDateTime


class RequestKind:
    APPROVAL = "approval"  # a sensitive grant: an approver approves or rejects it
    SOD = "sod"  # a grant that would create a separation-of-duties conflict: an exception or a policy fix


class RequestStatus:
    PENDING = "pending"  # waiting for a decision (the grant is not applied)
    APPROVED = "approved"  # approved (or an SoD exception granted): applied, until expires_at if set
    REJECTED = "rejected"  # not applied, and not asked again until the person's situation changes
    EXPIRED = "expired"  # the time-bound access ended: revoked through the planner
    REVOKED = "revoked"  # an SoD exception withdrawn by an approver: revoked through the planner
    WITHDRAWN = "withdrawn"  # no longer needed (the policy no longer grants it) before a decision
    ENDED = "ended"  # an approved grant the policies no longer give (removed the usual way)


OPEN = (RequestStatus.PENDING,)
LIVE = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.EXPIRED,
        RequestStatus.REVOKED)  # what the planner reads: a later row of a key replaces an earlier one


class AccessRequest(Base):
    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    group_key: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the SoD rule (kind sod)
    # The policies granting it and what the SoD rule sets it against: the diff a person reviews.
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    # SHA-256 of the HR attributes the granting policies read: a rejection holds while it is the same.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.PENDING)
    trigger: Mapped[str] = mapped_column(String(limits.PLAN_TRIGGER))  # the plan that asked
    requested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # an API token's name
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_access_requests_status", "status", "kind", "created_at"),
        Index("ix_access_requests_expiry", "status", "expires_at"),
    )
