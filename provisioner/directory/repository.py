"""Queries on the directory's entitlement groups."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from provisioner.directory.models import DirectoryGroup, DirectoryGroupMember


def policy_groups(session: Session) -> dict[tuple[str, str], DirectoryGroup]:
    rows = session.scalars(select(DirectoryGroup).where(DirectoryGroup.source == "policy"))
    return {(row.target, row.group_key): row for row in rows}


def member_group_ids(session: Session, identity_id: str) -> set[str]:
    return set(session.scalars(select(DirectoryGroupMember.group_id)
                               .where(DirectoryGroupMember.identity_id == identity_id)))


def add_member(session: Session, group_id: str, identity_id: str) -> None:
    session.add(DirectoryGroupMember(group_id=group_id, identity_id=identity_id))


def remove_members(session: Session, identity_id: str, group_ids: set[str]) -> None:
    if group_ids:
        session.execute(delete(DirectoryGroupMember).where(
            DirectoryGroupMember.identity_id == identity_id,
            DirectoryGroupMember.group_id.in_(group_ids)))
