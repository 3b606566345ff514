"""Every query reconciliation makes."""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from provisioner.evidence.models import RevocationIncident
from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity, TargetAccount, TargetMembership
from provisioner.reconcile.models import ReconcileCursor, ReconcileDrift, ReconcileRun

_STREAM = 5000  # rows fetched per round trip for the whole target's memberships


@dataclass(frozen=True, slots=True)
class Person:
    identity_id: str
    employee_id: str | None
    display_name: str | None
    terminated: bool


@dataclass(frozen=True, slots=True)
class Account:
    """A linked account, as reconciliation needs it (a row, not an ORM object: 20,000 of them
    load in a fraction of the time)."""

    identity_id: str
    remote_id: str
    login: str | None
    enabled: bool


@dataclass
class Known:
    """What the service knows of one target."""

    accounts: dict[str, Account] = field(default_factory=dict)  # by remote id
    members: dict[str, set[str]] = field(default_factory=dict)  # group key -> identity ids
    people: dict[str, Person] = field(default_factory=dict)  # by identity id
    remote_ids: dict[str, str] = field(default_factory=dict)  # identity id -> remote id

    def person_of(self, remote_id: str) -> Person | None:
        account = self.accounts.get(remote_id)
        return self.people.get(account.identity_id) if account is not None else None

    def remote_id_of(self, identity_id: str) -> str | None:
        return self.remote_ids.get(identity_id)


def _person(identity: Identity) -> Person:
    return Person(identity.id, identity.employee_id, identity.display_name, identity.state == State.TERMINATED)


def known(session: Session, target: str) -> Known:
    """Columns, not ORM objects: three queries whatever the size of the target."""
    out = Known()
    a, i = TargetAccount, Identity
    rows = session.execute(
        select(a.identity_id, a.remote_id, a.login, a.enabled, i.employee_id, i.display_name, i.state)
        .join(i, i.id == a.identity_id).where(a.target == target))
    terminated = State.TERMINATED.value
    for identity_id, remote_id, login, enabled, employee_id, display_name, state in rows:
        identity_id, remote_id = sys.intern(identity_id), sys.intern(remote_id)  # shared with the reads
        out.accounts[remote_id] = Account(identity_id, remote_id, login, bool(enabled))
        out.remote_ids[identity_id] = remote_id
        out.people[identity_id] = Person(identity_id, employee_id, display_name, state == terminated)
    # Streamed, and each identity id kept once (interned): 160,000
    # memberships are 160,000 rows but only as many distinct ids as people.
    rows = session.execute(select(TargetMembership.identity_id, TargetMembership.group_key)
                           .where(TargetMembership.target == target).execution_options(yield_per=_STREAM))
    for identity_id, group_key in rows:
        out.members.setdefault(group_key, set()).add(sys.intern(identity_id))
    return out


def linked_remote_ids(session: Session, target: str, remote_ids: Collection[str]) -> set[str]:
    """Which of ``remote_ids`` are linked to a person now (read again just before a fix)."""
    ids = list(remote_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(session.scalars(select(TargetAccount.remote_id).where(
            TargetAccount.target == target, TargetAccount.remote_id.in_(ids[start:start + 500]))))
    return found


def leavers_without_account(session: Session, target: str) -> list[Identity]:
    """Terminated people with an employee id and no account linked in ``target``."""
    linked = select(TargetAccount.identity_id).where(TargetAccount.target == target)
    rows = session.scalars(select(Identity).where(
        Identity.state == State.TERMINATED, Identity.employee_id.is_not(None),
        Identity.id.not_in(linked)).order_by(Identity.employee_id)).all()
    for identity in rows:
        session.expunge(identity)
    return list(rows)


def people_by_employee_id(session: Session, employee_ids: Sequence[str]) -> dict[str, Person]:
    ids = list(dict.fromkeys(employee_ids))
    out: dict[str, Person] = {}
    for start in range(0, len(ids), 500):
        for identity in session.scalars(select(Identity).where(Identity.employee_id.in_(ids[start:start + 500]))):
            out[identity.employee_id or ""] = _person(identity)
    return out


def open_incident(session: Session, identity_id: str, target: str, kind: str,
                  group: str | None) -> RevocationIncident | None:
    """The open (not yet fixed) incident for this person, target, kind and group, if any."""
    rows = session.scalars(select(RevocationIncident).where(
        RevocationIncident.identity_id == identity_id, RevocationIncident.target == target,
        RevocationIncident.kind == kind, RevocationIncident.fixed_at.is_(None))
        .order_by(RevocationIncident.id).with_for_update())
    return next((r for r in rows if (r.detail or {}).get("group") == group), None)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A saved :class:`ReconcileCursor`, detached from the session."""

    delta_link: str
    seen: dict[str, Any]
    updated_at: datetime


def cursors(session: Session, target: str) -> dict[str, Cursor]:
    """The target's saved cursors by resource ("groups", "users")."""
    rows = session.scalars(select(ReconcileCursor).where(ReconcileCursor.target == target))
    return {r.resource: Cursor(r.delta_link, r.seen, r.updated_at) for r in rows}


def save_cursor(session: Session, target: str, resource: str, delta_link: str, seen: dict[str, Any],
                now: datetime) -> None:
    """An upsert (``ON CONFLICT``, both engines): two runs (the schedule and an operator's) may
    save the same cursor at once; each saves a link with the picture it belongs to."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"delta_link": delta_link, "seen": seen, "updated_at": now}
    stmt = dialect.insert(ReconcileCursor).values(target=target, resource=resource, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["target", "resource"], set_=values))


def last_run_at(session: Session) -> datetime | None:
    """When the last whole reconciliation run (any process, any trigger; not a "fix selected"
    run, which reads only some targets) finished."""
    return session.scalar(select(func.max(ReconcileRun.finished_at)).where(ReconcileRun.selected.is_(False)))


# -- stored runs (provisioner/reconcile/runs.py) --------------------------------------------------

def recent_runs(session: Session, limit: int) -> list[ReconcileRun]:
    return list(session.scalars(select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(limit)))


def run(session: Session, run_id: int) -> ReconcileRun | None:
    return session.get(ReconcileRun, run_id)


def last_run(session: Session) -> ReconcileRun | None:
    return session.scalar(select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(1))


def unfixed_counts(session: Session, run_ids: Collection[int]) -> dict[int, int]:
    """Drift items not (yet) fixed, by run."""
    if not run_ids:
        return {}
    rows = session.execute(select(ReconcileDrift.run_id, func.count()).where(
        ReconcileDrift.run_id.in_(list(run_ids)), ReconcileDrift.fixed_at.is_(None)).group_by(ReconcileDrift.run_id))
    return {run_id: n for run_id, n in rows}


def run_items(session: Session, run_id: int, *, target: str | None = None, kind: str | None = None,
              ids: Collection[int] | None = None, lock: bool = False) -> list[ReconcileDrift]:
    """A run's drift items (by target and kind, then as found), optionally narrowed."""
    query = select(ReconcileDrift).where(ReconcileDrift.run_id == run_id)
    if target is not None:
        query = query.where(ReconcileDrift.target == target)
    if kind is not None:
        query = query.where(ReconcileDrift.kind == kind)
    if ids is not None:
        query = query.where(ReconcileDrift.id.in_(list(ids)))
    query = query.order_by(ReconcileDrift.kind, ReconcileDrift.target, ReconcileDrift.id)
    return list(session.scalars(query.with_for_update() if lock else query))


def run_facets(session: Session, run_id: int) -> list[tuple[str, str, int]]:
    """(target, kind, items) of a run: the filters the page offers."""
    rows = session.execute(select(ReconcileDrift.target, ReconcileDrift.kind, func.count())
                           .where(ReconcileDrift.run_id == run_id)
                           .group_by(ReconcileDrift.target, ReconcileDrift.kind))
    return sorted((t, k, n) for t, k, n in rows)


def drift_of_identity(session: Session, identity_id: str, limit: int) -> list[tuple[ReconcileDrift, datetime]]:
    """A person's drift items in the stored runs, newest first, with when their run started."""
    rows = session.execute(select(ReconcileDrift, ReconcileRun.started_at)
                           .join(ReconcileRun, ReconcileRun.id == ReconcileDrift.run_id)
                           .where(ReconcileDrift.identity_id == identity_id)
                           .order_by(ReconcileDrift.id.desc()).limit(limit))
    return [(d, at) for d, at in rows]


def incidents_of_identity(session: Session, identity_id: str, limit: int) -> list[RevocationIncident]:
    return list(session.scalars(select(RevocationIncident).where(RevocationIncident.identity_id == identity_id)
                                .order_by(RevocationIncident.id.desc()).limit(limit)))


def prune_runs(session: Session, keep: int) -> int:
    """Delete every run but the newest ``keep`` (and their drift items); how many runs went."""
    old = list(session.scalars(select(ReconcileRun.id).order_by(ReconcileRun.id.desc()).offset(keep)))
    for start in range(0, len(old), 500):
        chunk = old[start:start + 500]
        session.execute(delete(ReconcileDrift).where(ReconcileDrift.run_id.in_(chunk)))
        session.execute(delete(ReconcileRun).where(ReconcileRun.id.in_(chunk)))
    return len(old)
