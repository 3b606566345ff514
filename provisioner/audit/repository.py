"""Reading the audit trail (the console's audit page)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.audit.models import AuditRecord


def recent(session: Session, *, kind: str | None = None, subject: str | None = None,
           limit: int = 200) -> Sequence[AuditRecord]:
    """The newest records first; ``kind`` matches a prefix (``approval.``), ``subject`` exactly."""
    stmt = select(AuditRecord)
    if kind:
        stmt = stmt.where(AuditRecord.kind.startswith(kind, autoescape=True))
    if subject:
        stmt = stmt.where(AuditRecord.subject == subject)
    return session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(limit)).all()
