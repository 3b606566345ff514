"""Keep the directory's policy groups (served over SCIM) in step with what policies grant."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from provisioner.clock import utcnow
from provisioner.directory import repository
from provisioner.directory.models import DirectoryGroup


def ensure_policy_groups(session: Session, declared: dict[str, list[str]]) -> dict[tuple[str, str], DirectoryGroup]:
    """One directory group per managed group of each target (``target -> group names``)."""
    groups = repository.policy_groups(session)
    now = utcnow()
    for target, names in declared.items():
        for name in names:
            if (target, name) not in groups:
                display = name if target == "entra" else f"{target}: {name}"
                group = DirectoryGroup(id=str(uuid.uuid4()), display_name=display, source="policy",
                                       target=target, group_key=name, version=1,
                                       created_at=now, updated_at=now)
                session.add(group)
                groups[(target, name)] = group
    session.flush()
    return groups


def sync_memberships(session: Session, identity_id: str, desired: dict[str, set[str]],
                     groups: dict[tuple[str, str], DirectoryGroup]) -> None:
    """Make the identity a member of exactly the policy groups it is granted."""
    want = {groups[(t, g)].id for t, names in desired.items() for g in names if (t, g) in groups}
    policy_ids = {g.id for g in groups.values()}
    have = repository.member_group_ids(session, identity_id) & policy_ids
    now = utcnow()
    touched = (want - have) | (have - want)
    for group_id in want - have:
        repository.add_member(session, group_id, identity_id)
    repository.remove_members(session, identity_id, have - want)
    for group in groups.values():
        if group.id in touched:
            group.version += 1
            group.updated_at = now
