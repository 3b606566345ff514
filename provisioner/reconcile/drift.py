"""Finding drift in one target: read every managed group and every known account back (whole,
or through the target's changes since the last run: :mod:`.changes`), look for leavers'
accounts the service has no link for, and name every account concerned. Each read is retried
(:mod:`.retry`); one that keeps failing is reported and the others go on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from functools import partial

from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.reconcile import repository
from provisioner.reconcile.changes import read_groups, read_through_changes
from provisioner.reconcile.report import Drift, Kind
from provisioner.reconcile.repository import Known
from provisioner.reconcile.retry import ReadRetry, failed, unless_fatal
from provisioner.targets.changes import ChangeReader
from provisioner.targets.contract import AccountInfo, AccountState, Connector, Outcome, TargetError
from provisioner.targets.specs import account_spec

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 100  # leavers asked of a target's find_accounts at a time
READ_CHUNK = 100  # accounts read back (read_accounts) at a time: a failing read costs only its chunk


async def target_drift(db: Database, name: str, connector: Connector, group_ids: dict[str, str],
                       managed: Sequence[str], retry: ReadRetry | None = None, *, full: bool = False,
                       ) -> tuple[list[Drift], list[str], Known]:
    """Drift in one target (each line naming its account) and problems met.

    A target that can say what changed (:class:`ChangeReader`) is read through its changes
    unless ``full`` (:mod:`.changes`); the drift is the same. Every read is retried
    (``retry``); one that still fails is reported among the problems and the rest goes on:
    the other groups, the other accounts, the leavers' lookups."""
    retry = retry or ReadRetry()
    known = await asyncio.to_thread(_known, db, name)
    errors: list[str] = []
    present = {g: group_ids[g] for g in managed if g in group_ids}
    errors += [f"{name}: managed group {g!r} not found" for g in managed if g not in group_ids]
    if isinstance(connector, ChangeReader):
        actuals, states = await read_through_changes(db, name, connector, present, list(known.accounts), retry,
                                                     errors, full=full)
    else:
        actuals, states = await read_groups(name, connector, present, retry), None
    failures = [a for a in actuals.values() if isinstance(a, TargetError)]
    if failures and len(failures) == len(present):
        raise failures[0]  # no managed group could be read: the target cannot be read
    drift: list[Drift] = []
    for group, actual in actuals.items():
        if isinstance(actual, TargetError):
            errors.append(failed(name, f"the members of managed group {group!r}", actual))
            continue
        expected = {rid for i in known.members.get(group, set()) if (rid := known.remote_id_of(i))}
        for remote_id in sorted(actual - expected):
            kind = Kind.MEMBER_ADDED if remote_id in known.accounts else Kind.UNKNOWN_MEMBER
            drift.append(_line(known, name, group, kind, remote_id))
        for remote_id in sorted(expected - actual):
            drift.append(_line(known, name, group, Kind.MEMBER_REMOVED, remote_id))
    if states is None:
        states = await _read_accounts(name, connector, list(known.accounts), retry, errors)
    for remote_id, state in states.items():
        account = known.accounts[remote_id]
        if not state.exists:
            drift.append(_line(known, name, None, Kind.ACCOUNT_DELETED, remote_id))
        elif state.enabled is not None and state.enabled != account.enabled:
            kind = Kind.ACCOUNT_ENABLED if state.enabled else Kind.ACCOUNT_DISABLED
            drift.append(_line(known, name, None, kind, remote_id))
    drift += await _orphans(db, name, connector, known, retry, errors)
    try:
        await _name_accounts(name, connector, known, drift, retry)
    except TargetError as exc:  # the lines stand; they are named from what the service knows
        errors.append(failed(name, "who the accounts are (describe)", unless_fatal(exc)))
        _name_from_known(known, drift, {})
    return drift, errors, known


def _known(db: Database, target: str) -> Known:
    with db.read() as session:
        return repository.known(session, target)


async def _read_accounts(name: str, connector: Connector, accounts: list[str], retry: ReadRetry,
                         errors: list[str]) -> dict[str, AccountState]:
    """Every known account read back, ``READ_CHUNK`` at a time: a failing chunk is reported."""
    states: dict[str, AccountState] = {}
    for start in range(0, len(accounts), READ_CHUNK):
        chunk = accounts[start:start + READ_CHUNK]
        try:
            states.update(await retry(name, f"{len(chunk)} account(s)", partial(connector.read_accounts, chunk, [])))
        except TargetError as exc:
            errors.append(failed(name, f"{len(chunk)} account(s) ({chunk[0]} …)", unless_fatal(exc)))
    return states


def _line(known: Known, target: str, group: str | None, kind: str, remote_id: str) -> Drift:
    person = known.person_of(remote_id)
    return Drift(target, group, kind, person.employee_id if person else None, remote_id,
                 identity_id=person.identity_id if person else None,
                 terminated=bool(person and person.terminated))


async def _orphans(db: Database, name: str, connector: Connector, known: Known, retry: ReadRetry,
                   errors: list[str]) -> list[Drift]:
    """Accounts carrying a leaver's employee id that the service has no link for. Reported
    only: the service never created or linked them, so it does not own them (see README).
    A chunk of lookups that keeps failing is reported; the other chunks go on."""
    leavers = await asyncio.to_thread(_leavers, db, name)
    specs = [account_spec(person, login="") for person in leavers]
    by_employee = {p.employee_id: p for p in leavers}
    found: dict[str, tuple[str, str | None]] = {}
    out: list[Drift] = []
    for start in range(0, len(specs), LOOKUP_CHUNK):
        chunk = specs[start:start + LOOKUP_CHUNK]
        what = f"the accounts of {len(chunk)} leaver(s)"
        try:
            found.update(await retry(name, what, partial(connector.find_accounts, chunk)))
            continue
        except TargetError as exc:
            if exc.outcome != Outcome.BAD_REQUEST:
                errors.append(failed(name, f"{what} (from {chunk[0].employee_id})", unless_fatal(exc)))
                continue
        for spec in chunk:  # one person's lookup refused the chunk (two accounts hold one id): each alone
            try:
                match = await retry(name, f"the account of {spec.employee_id}", partial(connector.find_account, spec))
            except TargetError as exc:
                if exc.outcome != Outcome.BAD_REQUEST:
                    errors.append(failed(name, f"the account of leaver {spec.employee_id}", unless_fatal(exc)))
                    continue
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


async def _name_accounts(name: str, connector: Connector, known: Known, drift: list[Drift],
                         retry: ReadRetry) -> None:
    """Login and display name from the target, one batched read for the whole target; what the
    target cannot describe (a deleted account) is named from what the service knows."""
    ids = [d.remote_id for d in drift if d.remote_id]
    info = await retry(name, f"who {len(ids)} account(s) are",
                       partial(connector.describe_accounts, ids)) if ids else {}
    _name_from_known(known, drift, info)


def _name_from_known(known: Known, drift: list[Drift], info: Mapping[str, AccountInfo]) -> None:
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
