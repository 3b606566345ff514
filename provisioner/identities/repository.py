"""All queries on identities and what the service knows exists in each target."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from provisioner.db import insert_rows
from provisioner.identities.models import (
    Identity,
    LifecycleTransition,
    TargetAccount,
    TargetGroup,
    TargetMembership,
)


def by_employee_id(session: Session, employee_id: str, *, lock: bool = False) -> Identity | None:
    stmt = select(Identity).where(Identity.employee_id == employee_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def by_employee_ids(session: Session, employee_ids: Iterable[str], *, lock: bool = False) -> dict[str, Identity]:
    """These people's records by employee id (locked in id order, as ``lock_ids``)."""
    ids = sorted(set(employee_ids))
    out: dict[str, Identity] = {}
    for start in range(0, len(ids), 500):
        stmt = select(Identity).where(Identity.employee_id.in_(ids[start:start + 500])).order_by(Identity.id)
        if lock:
            stmt = stmt.with_for_update()
        out.update({i.employee_id: i for i in session.scalars(stmt)})
    return out


def known_employee_ids(session: Session, employee_ids: Iterable[str]) -> set[str]:
    """Which of these employee ids have a record (one query per 500)."""
    ids = sorted({e for e in employee_ids if e})
    out: set[str] = set()
    for start in range(0, len(ids), 500):
        out.update(session.scalars(select(Identity.employee_id).where(Identity.employee_id.in_(ids[start:start + 500]))))
    return out


def get(session: Session, identity_id: str, *, lock: bool = False) -> Identity | None:
    stmt = select(Identity).where(Identity.id == identity_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def lock_ids(session: Session, identity_ids: Iterable[str]) -> None:
    """Lock these people's rows, in id order (one order everywhere: no deadlock between two
    writers). On PostgreSQL a plan of the person and a worker's record of their operations then
    never run side by side, each blind to the other's uncommitted work."""
    ids = sorted(set(identity_ids))
    for start in range(0, len(ids), 500):
        session.execute(select(Identity.id).where(Identity.id.in_(ids[start:start + 500]))
                        .order_by(Identity.id).with_for_update())


def user_name_taken(session: Session, user_name: str, exclude_id: str | None = None) -> bool:
    stmt = select(Identity.id).where(Identity.user_name == user_name)
    if exclude_id is not None:
        stmt = stmt.where(Identity.id != exclude_id)
    return session.scalar(stmt.limit(1)) is not None


def user_names_taken(session: Session, user_names: Iterable[str]) -> set[str]:
    """Which of these logins some identity has."""
    names = sorted(set(user_names))
    out: set[str] = set()
    for start in range(0, len(names), 500):
        out.update(session.scalars(select(Identity.user_name).where(Identity.user_name.in_(names[start:start + 500]))))
    return out


def transitions(session: Session, identity_id: str) -> Sequence[LifecycleTransition]:
    return session.scalars(select(LifecycleTransition)
                           .where(LifecycleTransition.identity_id == identity_id)
                           .order_by(LifecycleTransition.id)).all()


def accounts(session: Session, identity_id: str) -> dict[str, TargetAccount]:
    rows = session.scalars(select(TargetAccount).where(TargetAccount.identity_id == identity_id))
    return {row.target: row for row in rows}


def account(session: Session, identity_id: str, target: str) -> TargetAccount | None:
    return session.scalar(select(TargetAccount).where(
        TargetAccount.identity_id == identity_id, TargetAccount.target == target))


def accounts_for(session: Session, identity_ids: Sequence[str], target: str) -> dict[str, TargetAccount]:
    rows = session.scalars(select(TargetAccount).where(
        TargetAccount.identity_id.in_(list(identity_ids)), TargetAccount.target == target))
    return {row.identity_id: row for row in rows}


def account_by_remote_id(session: Session, target: str, remote_id: str) -> TargetAccount | None:
    return session.scalar(select(TargetAccount).where(
        TargetAccount.target == target, TargetAccount.remote_id == remote_id))


def memberships(session: Session, identity_id: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in session.scalars(select(TargetMembership).where(TargetMembership.identity_id == identity_id)):
        out.setdefault(row.target, set()).add(row.group_key)
    return out


def add_membership(session: Session, identity_id: str, target: str, group_key: str,
                   group_remote_id: str | None, now) -> None:
    exists = session.scalar(select(TargetMembership.id).where(
        TargetMembership.identity_id == identity_id, TargetMembership.target == target,
        TargetMembership.group_key == group_key))
    if exists is None:
        session.add(TargetMembership(identity_id=identity_id, target=target, group_key=group_key,
                                     group_remote_id=group_remote_id, created_at=now))


def remove_membership(session: Session, identity_id: str, target: str, group_key: str) -> None:
    session.execute(delete(TargetMembership).where(
        TargetMembership.identity_id == identity_id, TargetMembership.target == target,
        TargetMembership.group_key == group_key))


def group_members(session: Session, target: str, group_key: str) -> Sequence[TargetMembership]:
    return session.scalars(select(TargetMembership).where(
        TargetMembership.target == target, TargetMembership.group_key == group_key)).all()


def target_groups(session: Session, target: str) -> dict[str, str]:
    rows = session.scalars(select(TargetGroup).where(TargetGroup.target == target))
    return {row.group_key: row.remote_id for row in rows}


def save_target_group(session: Session, target: str, group_key: str, remote_id: str, now) -> None:
    """Record a resolved group id; an upsert (``ON CONFLICT``, which both engines have), because
    worker rounds side by side (or several worker processes) may resolve the same group at once."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(TargetGroup).values(target=target, group_key=group_key, remote_id=remote_id,
                                              resolved_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["target", "group_key"],
                                               set_={"remote_id": remote_id, "resolved_at": now}))


def identities_by_id(session: Session, identity_ids: Sequence[str]) -> dict[str, Identity]:
    ids = list(set(identity_ids))
    out: dict[str, Identity] = {}
    for start in range(0, len(ids), 500):
        out.update({i.id: i for i in session.scalars(select(Identity).where(Identity.id.in_(ids[start:start + 500])))})
    return out


def accounts_by_identity(session: Session, identity_ids: Sequence[str]) -> dict[tuple[str, str], TargetAccount]:
    ids = list(set(identity_ids))
    out: dict[tuple[str, str], TargetAccount] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(select(TargetAccount).where(TargetAccount.identity_id.in_(ids[start:start + 500])))
        out.update({(a.identity_id, a.target): a for a in rows})
    return out


def membership_keys(session: Session, identity_ids: Sequence[str], *,
                    groups: Collection[str] | None = None) -> set[tuple[str, str, str]]:
    """These people's known memberships (of ``groups`` only, when given)."""
    ids = list(set(identity_ids))
    out: set[tuple[str, str, str]] = set()
    if groups is not None and not groups:
        return out
    for start in range(0, len(ids), 500):
        stmt = (select(TargetMembership.identity_id, TargetMembership.target, TargetMembership.group_key)
                .where(TargetMembership.identity_id.in_(ids[start:start + 500])))
        if groups is not None:
            stmt = stmt.where(TargetMembership.group_key.in_(sorted(groups)))
        rows = session.execute(stmt)
        out.update((r[0], r[1], r[2]) for r in rows)
    return out


def insert_transitions(session: Session, rows: list[dict]) -> None:
    insert_rows(session, LifecycleTransition, rows)


def insert_memberships(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(TargetMembership.__table__), rows)  # Core executemany: no ORM bookkeeping


def delete_memberships(session: Session, keys: list[tuple[str, str, str]]) -> None:
    for start in range(0, len(keys), 300):
        chunk = keys[start:start + 300]
        session.execute(delete(TargetMembership).where(
            tuple_(TargetMembership.identity_id, TargetMembership.target, TargetMembership.group_key).in_(chunk)))


def manager_remote_ids(session: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(manager employee id, target) -> the manager's account id in that target, where known."""
    wanted = set(pairs)
    employee_ids = sorted({e for e, _ in wanted})
    out: dict[tuple[str, str], str] = {}
    for start in range(0, len(employee_ids), 500):
        rows = session.execute(select(Identity.employee_id, TargetAccount.target, TargetAccount.remote_id)
                               .join(TargetAccount, TargetAccount.identity_id == Identity.id)
                               .where(Identity.employee_id.in_(employee_ids[start:start + 500])))
        for employee_id, target, remote_id in rows:
            if (employee_id, target) in wanted:
                out[(employee_id, target)] = remote_id
    return out


def account_refs(session: Session, identity_ids: Sequence[str]) -> dict[tuple[str, str], Any]:
    """(identity id, target) -> a row of the account's ``remote_id`` and ``login``: what a worker
    round needs of accounts it does not change (no ORM objects for hundreds of rows)."""
    ids = sorted(set(identity_ids))
    out: dict[tuple[str, str], Any] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(TargetAccount.identity_id, TargetAccount.target, TargetAccount.remote_id,
                                      TargetAccount.login)
                               .where(TargetAccount.identity_id.in_(ids[start:start + 500])))
        out.update({(r.identity_id, r.target): r for r in rows})
    return out


def employee_ids(session: Session, identity_ids: Sequence[str]) -> dict[str, str | None]:
    """Identity id -> employee id."""
    ids = sorted(set(identity_ids))
    out: dict[str, str | None] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Identity.id, Identity.employee_id).where(Identity.id.in_(ids[start:start + 500])))
        out.update((identity_id, employee_id) for identity_id, employee_id in rows)
    return out


def search(session: Session, text: str, limit: int = 50) -> Sequence[Identity]:
    """People whose name, employee id, login or email contains ``text`` (case-insensitive)."""
    like = f"%{text.lower().replace('%', '').replace('_', '')}%"
    columns = (Identity.display_name, Identity.given_name, Identity.family_name, Identity.preferred_name,
               Identity.employee_id, Identity.user_name, Identity.email)
    logins = select(TargetAccount.identity_id).where(func.lower(TargetAccount.login).like(like))
    return session.scalars(select(Identity).where(or_(*(func.lower(c).like(like) for c in columns),
                                                      Identity.id.in_(logins)))
                           .order_by(Identity.display_name, Identity.id).limit(limit)).all()
