"""Queries on the directory's entitlement groups."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from provisioner.db import insert_rows
from provisioner.directory.models import DirectoryGroup, DirectoryGroupMember


def policy_groups(session: Session) -> dict[tuple[str, str], DirectoryGroup]:
    rows = session.scalars(select(DirectoryGroup).where(DirectoryGroup.source == "policy"))
    return {(row.target, row.group_key): row for row in rows}


def member_group_ids_for(session: Session, identity_ids: Sequence[str]) -> dict[str, set[str]]:
    ids = sorted(set(identity_ids))
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), 500):
        for group_id, identity_id in session.execute(
                select(DirectoryGroupMember.group_id, DirectoryGroupMember.identity_id)
                .where(DirectoryGroupMember.identity_id.in_(ids[start:start + 500]))).tuples():
            out.setdefault(identity_id, set()).add(group_id)
    return out


def add_members(session: Session, pairs: Sequence[tuple[str, str]]) -> None:
    """Add (group id, identity id) memberships in one statement."""
    insert_rows(session, DirectoryGroupMember, [{"group_id": g, "identity_id": i} for g, i in pairs])


def remove_member_pairs(session: Session, pairs: Sequence[tuple[str, str]]) -> None:
    """Remove (group id, identity id) memberships."""
    for start in range(0, len(pairs), 300):
        session.execute(delete(DirectoryGroupMember).where(
            tuple_(DirectoryGroupMember.group_id, DirectoryGroupMember.identity_id)
            .in_(list(pairs[start:start + 300]))))
