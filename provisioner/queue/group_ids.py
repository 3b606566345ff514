"""The ids of a target's managed groups, for the worker and for reconciliation.

Ids already resolved are read from the database (``target_groups``). The others come from the
target file (``managed_groups[].id``) or are looked up by name through the connector, which
creates a missing group where the target file says so (``create_missing_groups``), and are
saved. Looking up, and so creating, runs one caller at a time per target: in this process
(an asyncio lock per target) and across processes (:meth:`Database.named_lock`); otherwise
two callers could each find the group missing and each create a copy (a SCIM displayName
need not be unique, RFC 7643 §4.2).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.planner.service import PlanningContext
from provisioner.targets.contract import Connector, Outcome, TargetError

LOCK_SECONDS = 60.0
"""How long a caller waits for another process resolving (creating) a target's groups."""


class GroupIds:
    """Resolve group names to a target's ids (see the module)."""

    def __init__(self, db: Database, ctx: PlanningContext) -> None:
        self.db, self.ctx = db, ctx
        self._resolving: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def resolve(self, target: str, connector: Connector, keys: Collection[str]) -> dict[str, str]:
        """Every known id of ``target``'s groups, with ``keys`` among them where they exist."""
        async with self._resolving[target]:
            known = await asyncio.to_thread(self._saved, target)
            if all(k in known for k in keys):
                return known
            lock = self.db.named_lock(f"target-groups:{target}")
            if not await asyncio.to_thread(lock.acquire, LOCK_SECONDS):
                raise TargetError(Outcome.TRANSIENT, f"another worker has been resolving {target}'s groups "
                                                     f"for {LOCK_SECONDS:g} s")
            try:
                # Read again under the lock: another process may have saved them meanwhile.
                known = await asyncio.to_thread(self._saved, target)
                return await self._look_up(target, connector, [k for k in keys if k not in known], known)
            finally:
                await asyncio.to_thread(lock.release)

    async def _look_up(self, target: str, connector: Connector, missing: list[str],
                       known: dict[str, str]) -> dict[str, str]:
        if not missing:
            return known
        declared = {g.name: g.id for g in self.ctx.targets[target].managed_groups}
        found = {k: declared[k] for k in missing if declared.get(k)}
        lookup = sorted(k for k in missing if k not in found)
        if lookup:
            found.update(await connector.resolve_groups(lookup))
        if found:
            await asyncio.to_thread(self._save, target, found)
        return {**known, **found}

    def _saved(self, target: str) -> dict[str, str]:
        with self.db.read() as session:
            return identities.target_groups(session, target)

    def _save(self, target: str, found: dict[str, str]) -> None:
        with self.db.transaction() as session:
            for key, remote_id in found.items():
                identities.save_target_group(session, target, key, remote_id, utcnow())
