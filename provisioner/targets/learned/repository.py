"""Every query on learned forms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.targets.learned.models import LearnedForm

REASON_MAX = 1000


def all_forms(session: Session) -> list[LearnedForm]:
    return list(session.scalars(select(LearnedForm).order_by(LearnedForm.target, LearnedForm.operation,
                                                              LearnedForm.form)))


def record(session: Session, target: str, operation: str, form: str, reason: str, at: datetime) -> None:
    """Insert or refresh one lesson (the primary key is target, operation, form)."""
    row = session.get(LearnedForm, (target, operation, form))
    if row is None:
        session.add(LearnedForm(target=target, operation=operation, form=form, reason=reason[:REASON_MAX],
                                learned_at=at))
    else:
        row.reason, row.learned_at = reason[:REASON_MAX], at


def forget(session: Session, target: str) -> int:
    rows = list(session.scalars(select(LearnedForm).where(LearnedForm.target == target)))
    for row in rows:
        session.delete(row)
    return len(rows)
