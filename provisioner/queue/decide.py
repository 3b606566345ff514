"""What the worker does with each outcome: the one place that decides retry, link, skip or halt.

Connectors only say what happened (``Outcome``); this table says what that means for each kind
of operation. Idempotency against the target lives here too: already a member is done, removing
an absent member is done, disabling an account that is gone is done.
"""

from __future__ import annotations

import random
from enum import StrEnum

from provisioner.targets.contract import OpKind, Outcome


class Action(StrEnum):
    SUCCEED = "succeed"
    RETRY = "retry"
    DEAD = "dead"
    LINK = "link"  # create said "exists": look the person up and link, or pick another login
    HALT = "halt"  # the target refuses us as a whole: pause it, keep the operation
    WAIT = "wait"  # what it refers to does not exist yet (a manager's account): wait for it
    NEXT_LOGIN = "next_login"  # a rename's new login is taken in the target: try the next suffix


# Outcomes that mean the desired end state already holds.
_ALREADY_DONE: dict[Outcome, set[OpKind]] = {
    Outcome.EXISTS: {OpKind.ADD_MEMBER},
    Outcome.NOT_FOUND: {OpKind.REMOVE_MEMBER, OpKind.DELETE_ACCOUNT, OpKind.DISABLE_ACCOUNT,
                        OpKind.REVOKE_SESSIONS, OpKind.CLEAR_MANAGER},
}


def decide(kind: OpKind, outcome: Outcome, attempts: int, max_attempts: int, *, renaming: bool = False,
           manager_absent: bool = False) -> Action:
    """``renaming``: an account update that moves the account to a new login (on_name_change).
    ``manager_absent``: the manager has no account in the target yet (found before any call);
    a 404 from the target itself (an account deleted behind the service's back) is no reason to
    wait, and is dead-lettered like any other."""
    if outcome == Outcome.DONE or kind in _ALREADY_DONE.get(outcome, set()):
        return Action.SUCCEED
    if outcome == Outcome.EXISTS and kind == OpKind.CREATE_ACCOUNT:
        return Action.LINK
    if outcome == Outcome.NOT_FOUND and kind == OpKind.SET_MANAGER and manager_absent:
        return Action.WAIT  # released when the manager's account is created or linked
    if outcome == Outcome.EXISTS and kind == OpKind.UPDATE_ACCOUNT and renaming:
        return Action.NEXT_LOGIN
    if outcome == Outcome.STOP:
        return Action.HALT
    if outcome == Outcome.TRANSIENT:
        return Action.RETRY if attempts < max_attempts else Action.DEAD
    return Action.DEAD  # BAD_REQUEST, NOT_FOUND for a grant, EXISTS elsewhere


def backoff_cap(revocation: bool, *, cap: float, revocation_cap: float) -> float:
    """The longest back-off: revocation work (``Priority.is_revocation``) is tried again at
    least every ``revocation_cap`` seconds, so a leaver's access never waits out a long
    exponential back-off earned while the target was busy; a Retry-After is still a floor."""
    return min(cap, revocation_cap) if revocation else cap


def backoff_seconds(attempts: int, retry_after: float | None, *, base: float, cap: float,
                    rng: random.Random | None = None) -> float:
    """Exponential back-off with equal jitter; a server's Retry-After is a floor, never cut."""
    rng = rng or random
    exp = min(cap, base * (2 ** max(0, attempts - 1)))
    delay = exp / 2 + rng.uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(retry_after, 0.0) + rng.uniform(0, min(1.0, base))
    return min(delay, max(cap, retry_after or 0.0))
