"""Finding drift in one target: read every managed group and every known account back, look
for leavers' accounts the service has no link for, and name every account concerned."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.reconcile import repository
from provisioner.reconcile.report import Drift, Kind
from provisioner.reconcile.repository import Known
from provisioner.targets.contract import Connector, Outcome, TargetError
from provisioner.targets.specs import account_spec

LOOKUP_CHUNK = 100  # leavers asked of a target's find_accounts at a time


async def target_drift(db: Database, name: str, connector: Connector, group_ids: dict[str, str],
                       managed: Sequence[str]) -> tuple[list[Drift], list[str], Known]:
    """Drift in one target (each line naming its account) and problems met; raises
    ``TargetError`` when the target cannot be read."""
    known = await asyncio.to_thread(_known, db, name)
    errors: list[str] = []
    present = [g for g in managed if g in group_ids]
    errors += [f"{name}: managed group {g!r} not found" for g in managed if g not in group_ids]
    actuals = await asyncio.gather(*(connector.group_member_ids(group_ids[g]) for g in present))
    drift: list[Drift] = []
    for group, actual in zip(present, actuals, strict=True):
        expected = {rid for i in known.members.get(group, set()) if (rid := known.remote_id_of(i))}
        for remote_id in sorted(actual - expected):
            kind = Kind.MEMBER_ADDED if remote_id in known.accounts else Kind.UNKNOWN_MEMBER
            drift.append(_line(known, name, group, kind, remote_id))
        for remote_id in sorted(expected - actual):
            drift.append(_line(known, name, group, Kind.MEMBER_REMOVED, remote_id))
    states = await connector.read_accounts(list(known.accounts), [])
    for remote_id, state in states.items():
        account = known.accounts[remote_id]
        if not state.exists:
            drift.append(_line(known, name, None, Kind.ACCOUNT_DELETED, remote_id))
        elif state.enabled is not None and state.enabled != account.enabled:
            kind = Kind.ACCOUNT_ENABLED if state.enabled else Kind.ACCOUNT_DISABLED
            drift.append(_line(known, name, None, kind, remote_id))
    drift += await _orphans(db, name, connector, known)
    await _name_accounts(connector, known, drift)
    return drift, errors, known


def _known(db: Database, target: str) -> Known:
    with db.read() as session:
        return repository.known(session, target)


def _line(known: Known, target: str, group: str | None, kind: str, remote_id: str) -> Drift:
    person = known.person_of(remote_id)
    return Drift(target, group, kind, person.employee_id if person else None, remote_id,
                 identity_id=person.identity_id if person else None,
                 terminated=bool(person and person.terminated))


async def _orphans(db: Database, name: str, connector: Connector, known: Known) -> list[Drift]:
    """Accounts carrying a leaver's employee id that the service has no link for. Reported
    only: the service never created or linked them, so it does not own them (see README)."""
    leavers = await asyncio.to_thread(_leavers, db, name)
    specs = [account_spec(person, login="") for person in leavers]
    by_employee = {p.employee_id: p for p in leavers}
    found: dict[str, tuple[str, str | None]] = {}
    out: list[Drift] = []
    for start in range(0, len(specs), LOOKUP_CHUNK):
        chunk = specs[start:start + LOOKUP_CHUNK]
        try:
            found.update(await connector.find_accounts(chunk))
            continue
        except TargetError as exc:
            if exc.outcome != Outcome.BAD_REQUEST:
                raise
        for spec in chunk:  # one person's lookup refused the chunk (two accounts hold one id): each alone
            try:
                match = await connector.find_account(spec)
            except TargetError as exc:
                if exc.outcome != Outcome.BAD_REQUEST:
                    raise
                person = by_employee[spec.employee_id]
                out.append(Drift(name, None, Kind.ORPHAN, spec.employee_id, None, display_name=person.display_name,
                                 identity_id=person.id, terminated=True, action=exc.detail))
                continue
            if match is not None:
                found[spec.employee_id] = match
    for employee_id, (remote_id, login) in sorted(found.items()):
        if remote_id in known.accounts:  # someone else's linked account: not an orphan
            continue
        person = by_employee[employee_id]
        out.append(Drift(name, None, Kind.ORPHAN, employee_id, remote_id, login=login,
                         display_name=person.display_name, identity_id=person.id, terminated=True))
    return out


def _leavers(db: Database, target: str) -> list[Identity]:
    with db.read() as session:
        return repository.leavers_without_account(session, target)


async def _name_accounts(connector: Connector, known: Known, drift: list[Drift]) -> None:
    """Login and display name from the target, one batched read for the whole target; what the
    target cannot describe (a deleted account) is named from what the service knows."""
    ids = [d.remote_id for d in drift if d.remote_id]
    info = await connector.describe_accounts(ids) if ids else {}
    for d in drift:
        found = info.get(d.remote_id or "")
        account = known.accounts.get(d.remote_id or "")
        person = known.person_of(d.remote_id or "")
        if found is not None:
            d.login = found.login or d.login
            d.display_name = found.display_name or d.display_name
            d.employee_id = d.employee_id or found.employee_id
        if account is not None:
            d.login = d.login or account.login
        if person is not None:
            d.display_name = d.display_name or person.display_name
