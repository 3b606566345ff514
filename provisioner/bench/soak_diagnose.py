"""What the service's database says about the people the kill-soak found lost, duplicated or
wrong: written next to the process logs, so a finding can be traced to its events, plans and
operations (the verdict itself never comes from here: it is read back from the sandbox)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from provisioner.db import Database
from provisioner.identities.models import Identity, LifecycleTransition, TargetAccount, TargetMembership
from provisioner.intake.models import HREvent
from provisioner.planner.models import Plan
from provisioner.queue.models import Operation


def _t(value) -> str:
    return value.isoformat(timespec="milliseconds") if value else "-"


def write(db: Database, employee_ids: list[str], path: Path) -> None:
    lines: list[str] = []
    with db.transaction() as session:
        for employee_id in employee_ids:
            lines.append(f"=== {employee_id}")
            for e in session.scalars(select(HREvent).where(HREvent.employee_id == employee_id).order_by(HREvent.id)):
                lines.append(f"event {e.event_id} {e.type}{' immediate' if e.immediate else ''} effective "
                             f"{_t(e.effective_at)} received {_t(e.received_at)} processed {_t(e.processed_at)} "
                             f"{e.status} {e.status_reason or ''}")
            person = session.scalar(select(Identity).where(Identity.employee_id == employee_id))
            if person is None:
                lines.append("no identity")
                continue
            lines.append(f"identity {person.id} state={person.state} user_name={person.user_name}")
            for t in session.scalars(select(LifecycleTransition).where(
                    LifecycleTransition.identity_id == person.id).order_by(LifecycleTransition.id)):
                lines.append(f"transition {_t(t.at)} {t.event_type} {t.from_state} -> {t.to_state} "
                             f"accepted={t.accepted} {t.reason or ''}")
            for a in session.scalars(select(TargetAccount).where(TargetAccount.identity_id == person.id)):
                lines.append(f"account {a.target} {a.remote_id} {a.login} enabled={a.enabled} linked={a.linked} "
                             f"updated {_t(a.updated_at)}")
            groups = session.scalars(select(TargetMembership.group_key).where(
                TargetMembership.identity_id == person.id)).all()
            lines.append(f"memberships known: {', '.join(sorted(groups)) or '-'}")
            for p in session.scalars(select(Plan).where(Plan.identity_id == person.id).order_by(Plan.id)):
                lines.append(f"plan {p.id} {_t(p.created_at)} {p.kind} trigger={p.trigger}")
            ops = select(Operation).where(Operation.identity_id == person.id).order_by(Operation.id)
            for op in session.scalars(ops):
                lines.append(f"op {op.id} plan={op.plan_id} {op.kind} {op.group_key or ''} prio={op.priority} "
                             f"{op.status} attempts={op.attempts} depends_on={op.depends_on_id} "
                             f"claimed_by={op.claimed_by} created {_t(op.created_at)} completed "
                             f"{_t(op.completed_at)} payload={op.payload} error={op.last_error or ''}")
    path.write_text("\n".join(lines) + "\n")
