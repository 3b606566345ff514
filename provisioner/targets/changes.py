"""Reading only what changed in a target since the last read: an optional capability a
connector may have besides :class:`provisioner.targets.contract.Connector` (Entra ID has it
through Graph delta queries; a SCIM app does not, and is read whole every time).

A round ends with a ``link`` to follow next time for the changes since. Following it again
is harmless (a retried round); a link the target no longer honours (Graph: ``410 Gone``,
``syncStateNotFound``) raises :class:`ChangesExpired`, and the caller starts over with a
full read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from provisioner.targets.contract import Outcome, TargetError


@dataclass(slots=True)
class GroupChanges:
    """Membership changes since a link, for every group the target tracks."""

    link: str  # where the next round starts
    members: dict[str, dict[str, bool]] = field(default_factory=dict)  # group id -> member id -> a member now?
    removed_groups: set[str] = field(default_factory=set)  # deleted since


@dataclass(slots=True)
class UserChanges:
    """Accounts created, changed or deleted since a link; with ``link=None`` asked, every account."""

    link: str
    enabled: dict[str, bool | None] = field(default_factory=dict)  # account id -> enabled now
    removed: set[str] = field(default_factory=set)  # deleted since


class ChangesExpired(TargetError):
    """The target no longer knows the link (expired, or from another tenant state): read it all again."""

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(Outcome.NOT_FOUND, detail, status_code=status_code)


@runtime_checkable
class ChangeReader(Protocol):
    async def group_changes(self, link: str | None) -> GroupChanges:
        """Membership changes since ``link``; with ``None``, no changes and a link that starts
        tracking now (read the groups whole after asking for it, so nothing falls between)."""
        ...

    async def user_changes(self, link: str | None) -> UserChanges:
        """Accounts' enabled flag changed since ``link``; with ``None``, every account."""
        ...
