"""Reading a target through its changes (a connector that is a
:class:`provisioner.targets.changes.ChangeReader`, e.g. Entra ID's delta queries) instead of
whole, for the same drift as a full read.

Kept between runs (:class:`provisioner.reconcile.models.ReconcileCursor`): per target, the
picture of the target as last read (each managed group's members, every account's enabled
flag) and the link its changes continue from. A run follows the links, applies the changes
to the picture and hands :mod:`.drift` the picture: the target as it is now, which drift
compares with what the service knows, as a full read would. So drift that was there before
and is still there is reported again, as by a full read.

A full read happens when there is no cursor, when asked (``full``: ``provisioner reconcile
--full``), when the target no longer honours a link (410 ``syncStateNotFound``: logged) and
for a managed group the picture does not hold (new, or unreadable last time). For groups a
link that starts *now* is taken first, then each group is listed, so a change made while
listing is seen again next time (applying it twice changes nothing). A failed read of a
group or of the accounts is reported as in a full read; what was not read is not saved.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.reconcile import repository
from provisioner.reconcile.repository import Cursor
from provisioner.reconcile.retry import ReadRetry, failed, unless_fatal
from provisioner.targets.changes import ChangeReader, ChangesExpired, GroupChanges, UserChanges
from provisioner.targets.contract import AccountState, Connector, TargetError

log = logging.getLogger(__name__)

GROUPS, USERS = "groups", "users"
Members = dict[str, "set[str] | TargetError"]  # group key -> member ids, or why it could not be read


async def read_groups(name: str, connector: Connector, group_ids: Mapping[str, str], retry: ReadRetry,
                      ) -> Members:
    """Every group listed whole (any connector)."""
    keys = list(group_ids)
    listed = await asyncio.gather(*(
        retry(name, f"the members of {g!r}", partial(connector.group_member_ids, group_ids[g])) for g in keys),
        return_exceptions=True)
    return {g: unless_fatal(got) if isinstance(got, BaseException) else got for g, got in zip(keys, listed, strict=True)}


async def read_through_changes(db: Database, name: str, connector: ChangeReader, group_ids: Mapping[str, str],
                               account_ids: Sequence[str], retry: ReadRetry, errors: list[str], *,
                               full: bool = False) -> tuple[Members, dict[str, AccountState]]:
    """The managed groups' members (by group key) and the known accounts' states, from the
    saved picture and the changes since; the new picture and links are saved."""
    saved = {} if full else await asyncio.to_thread(_cursors, db, name)
    # Popped, not read: each saved picture is dropped as soon as it has been brought up to date.
    members, groups_cursor = await _groups(name, connector, group_ids, saved.pop(GROUPS, None), retry)
    states, users_cursor = await _users(name, connector, account_ids, saved.pop(USERS, None), retry, errors)
    await asyncio.to_thread(_save, db, name, {GROUPS: groups_cursor, USERS: users_cursor})
    return members, states


async def _groups(name: str, connector: ChangeReader, group_ids: Mapping[str, str], cursor: Cursor | None,
                  retry: ReadRetry) -> tuple[Members, tuple[str, dict[str, Any]] | None]:
    seen: dict[str, set[str]] = {}
    link: str | None = None
    if cursor is not None:
        changes = await _changes(name, "groups", partial(connector.group_changes, cursor.delta_link), retry)
        if changes is not None:
            link = changes.link
            seen = _apply_members(cursor.seen, changes)
        cursor = changes = None  # the saved lists go: the picture is in ``seen`` now
    if link is None:  # a full read: start tracking first, so nothing changed while listing is missed
        try:
            link = (await retry(name, "a delta link for the groups", partial(connector.group_changes, None))).link
        except TargetError as exc:  # listed all the same; tracking starts next time
            log.warning("reconcile: %s: cannot start tracking group changes: %s", name, unless_fatal(exc).detail,
                        extra={"target": name})
    to_list = {g: gid for g, gid in group_ids.items() if gid not in seen}
    listed = await read_groups(name, connector, to_list, retry)
    members: Members = {}
    for g, gid in group_ids.items():
        got = listed.get(g, seen.get(gid))
        members[g] = got if got is not None else set()
        if isinstance(got, set):
            seen[gid] = got
    if link is None:
        return members, None
    return members, (link, {gid: sorted(seen[gid]) for gid in group_ids.values() if gid in seen})


def _apply_members(saved: Mapping[str, Any], changes: GroupChanges) -> dict[str, set[str]]:
    # Interned: the 160,000 saved ids of a company are its 20,000 accounts' ids, kept once.
    seen = {gid: set(map(sys.intern, ids)) for gid, ids in saved.items() if gid not in changes.removed_groups}
    for gid, changed in changes.members.items():
        group = seen.get(gid)
        if group is None:
            continue  # not a managed group (or not read yet: listed whole)
        for member_id, present in changed.items():
            if present:
                group.add(member_id)
            else:
                group.discard(member_id)
    return seen


async def _users(name: str, connector: ChangeReader, account_ids: Sequence[str], cursor: Cursor | None,
                 retry: ReadRetry, errors: list[str],
                 ) -> tuple[dict[str, AccountState], tuple[str, dict[str, Any]] | None]:
    enabled: dict[str, bool | None] | None = None
    link = ""
    if cursor is not None:
        changes = await _changes(name, "accounts", partial(connector.user_changes, cursor.delta_link), retry)
        if changes is not None:
            enabled = {sys.intern(rid): flag for rid, flag in cursor.seen.items()}
            cursor = None  # the saved flags are copied: the loaded picture goes
            for removed in changes.removed:
                enabled.pop(removed, None)
            enabled.update(changes.enabled)
            link = changes.link
    if enabled is None:
        try:
            every = await retry(name, "every account", partial(connector.user_changes, None))
        except TargetError as exc:
            errors.append(failed(name, f"{len(account_ids)} account(s)", unless_fatal(exc)))
            return {}, None
        enabled, link = every.enabled, every.link
    states = {rid: AccountState(rid, exists=rid in enabled, enabled=enabled.get(rid), group_ids=set())
              for rid in account_ids}
    return states, (link, enabled)


async def _changes(name: str, what: str, call, retry: ReadRetry) -> GroupChanges | UserChanges | None:
    """The changes since the saved link, or None: read whole (the link expired, or reading
    the changes failed; a target that refuses the service as a whole is raised)."""
    try:
        return await retry(name, f"the changes to the {what}", call)
    except ChangesExpired as exc:
        log.warning("reconcile: %s: the %s delta link is no longer valid (%s): reading them whole",
                    name, what, exc.detail, extra={"target": name, "alert": "reconcile_resync"})
    except TargetError as exc:
        log.warning("reconcile: %s: cannot read the changes to the %s (%s): reading them whole",
                    name, what, unless_fatal(exc).detail, extra={"target": name})
    return None


def _cursors(db: Database, target: str) -> dict[str, Cursor]:
    with db.read() as session:
        return repository.cursors(session, target)


def _save(db: Database, target: str, cursors: Mapping[str, tuple[str, dict[str, Any]] | None]) -> None:
    now = utcnow()
    with db.transaction() as session:
        for resource, cursor in cursors.items():
            if cursor is not None:
                repository.save_cursor(session, target, resource, cursor[0], cursor[1], now)
