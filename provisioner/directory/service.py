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
    sync_memberships_many(session, {identity_id: desired}, groups)


def sync_memberships_many(session: Session, desired: dict[str, dict[str, set[str]]],
                          groups: dict[tuple[str, str], DirectoryGroup]) -> None:
    """Make each identity (``identity id -> target -> group names``) a member of exactly the
    policy groups it is granted; each group changed gets one new version."""
    policy_ids = {g.id for g in groups.values()}
    members = repository.member_group_ids_for(session, list(desired))
    adds: list[tuple[str, str]] = []
    removes: list[tuple[str, str]] = []
    touched: set[str] = set()
    for identity_id, names in desired.items():
        want = {groups[(t, g)].id for t, group_names in names.items() for g in group_names if (t, g) in groups}
        have = members.get(identity_id, set()) & policy_ids
        adds.extend((group_id, identity_id) for group_id in sorted(want - have))
        removes.extend((group_id, identity_id) for group_id in sorted(have - want))
        touched |= (want - have) | (have - want)
    repository.add_members(session, adds)
    repository.remove_member_pairs(session, removes)
    now = utcnow()
    for group in groups.values():
        if group.id in touched:
            group.version += 1
            group.updated_at = now
