"""Per-operation fallback ladders, and what this target's app was found not to do.

Each write operation can be sent in several forms, tried in order; a form the app refuses
(501, 405, a 400 saying the path or filter is not supported) or answers 2xx without the effect
(:mod:`verify`) is learned as refused for that operation only, and the next form is used, now
and from then on. What was learned is handed in at start (``load``) and reported through
``on_learned`` (the runtime persists it: :mod:`provisioner.targets.learned`); this module keeps
no database of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from provisioner.targets.contract import OpKind
from provisioner.targets.scim.capabilities import Capabilities
from provisioner.targets.scim.config import ScimTarget

log = logging.getLogger(__name__)

MEMBER_ADD, MEMBER_REMOVE, USER_UPDATE, USER_ACTIVE = "member_add", "member_remove", "user_update", "user_active"
PATCH, FILTER, VALUE_LIST, PUT = "patch", "filter", "value_list", "put"

# The forms of each operation, best first (RFC 7644 §3.5.2 PATCH, §3.5.1 PUT).
LADDERS: dict[str, tuple[str, ...]] = {
    MEMBER_REMOVE: (FILTER, VALUE_LIST, PUT),  # members[value eq "x"], path members + value list, PUT
    MEMBER_ADD: (PATCH, PUT),
    USER_UPDATE: (PATCH, PUT),  # PATCH replace; GET + PUT with If-Match
    USER_ACTIVE: (PATCH, PUT),
}
DESCRIBE: dict[tuple[str, str], str] = {
    (MEMBER_REMOVE, FILTER): 'Groups PATCH remove members[value eq "…"]',
    (MEMBER_REMOVE, VALUE_LIST): "Groups PATCH remove with a value list",
    (MEMBER_REMOVE, PUT): "PUT of the group",
    (MEMBER_ADD, PATCH): "Groups PATCH add",
    (MEMBER_ADD, PUT): "PUT of the group",
    (USER_UPDATE, PATCH): "Users PATCH replace",
    (USER_UPDATE, PUT): "GET + PUT of the user",
    (USER_ACTIVE, PATCH): "Users PATCH active",
    (USER_ACTIVE, PUT): "GET + PUT of the user",
}
# A 400 with one of these scimTypes (RFC 7644 §3.12) is about the form, not the value.
FORM_SCIM_TYPES = frozenset({"invalidPath", "invalidFilter", "invalidSyntax"})
FORM_WORDS = ("not supported", "unsupported", "not implemented")

REFUSED = Gauge("provisioner_target_form_refused",
                "1 for each write form a target's app was found not to do (refused or without effect); "
                "the connector uses the next form of that operation",
                ["target", "operation", "form"])


def operation_of(kind: OpKind, action: str | None = None) -> str | None:
    if kind == OpKind.ADD_MEMBER:
        return MEMBER_ADD
    if kind == OpKind.REMOVE_MEMBER:
        return MEMBER_REMOVE
    if kind == OpKind.UPDATE_ACCOUNT:
        return USER_UPDATE
    if kind in (OpKind.ENABLE_ACCOUNT, OpKind.DISABLE_ACCOUNT):
        return USER_ACTIVE
    return None


def is_form_refusal(status: int | None, scim_type: str | None, detail: str) -> bool:
    """Does this answer say the app does not do this form (rather than: this value is wrong)?"""
    if status in (501, 405):
        return True
    if status == 400:
        text = detail.lower()
        return (scim_type in FORM_SCIM_TYPES or any(t.lower() in text for t in FORM_SCIM_TYPES)
                or any(w in text for w in FORM_WORDS))
    return False


@dataclass(frozen=True, slots=True)
class Lesson:
    target: str
    operation: str
    form: str
    reason: str
    learned_at: datetime


class LearnedForms:
    """The forms of each operation this target's app does not do; picks the form to use."""

    def __init__(self, config: ScimTarget) -> None:
        self.config = config
        self.target = config.name
        self.refused: dict[tuple[str, str], Lesson] = {}
        self.on_learned: Callable[[Lesson], Any] | None = None  # set by the runtime: persists

    def load(self, lessons: Iterable[Lesson]) -> None:
        for lesson in lessons:
            if lesson.target == self.target and (lesson.operation, lesson.form) in DESCRIBE:
                self.refused[(lesson.operation, lesson.form)] = lesson
                REFUSED.labels(self.target, lesson.operation, lesson.form).set(1)

    def allowed(self, operation: str, caps: Capabilities) -> tuple[str, ...]:
        """The ladder as this server's configuration and the target file permit it."""
        ladder = LADDERS[operation]
        if operation in (MEMBER_ADD, MEMBER_REMOVE):
            if not caps.group_patch:
                return (PUT,)
            if operation == MEMBER_REMOVE and self.config.compatibility.remove_member_style == "value_list":
                return (VALUE_LIST, PUT)
        elif not caps.patch:
            return (PUT,)
        return ladder

    def form(self, operation: str, caps: Capabilities) -> str:
        """The first form not learned refused; the last one when all were (tried again, verified)."""
        ladder = self.allowed(operation, caps)
        for form in ladder:
            if (operation, form) not in self.refused:
                return form
        return ladder[-1]

    def after(self, operation: str, tried: str, caps: Capabilities) -> str | None:
        """The form to try after ``tried`` failed, or None when the ladder is exhausted."""
        ladder = self.allowed(operation, caps)
        if tried not in ladder or tried == ladder[-1]:
            return None
        rest = ladder[ladder.index(tried) + 1:]
        for form in rest:
            if (operation, form) not in self.refused:
                return form
        return rest[-1]

    def learn(self, operation: str, form: str, reason: str) -> Lesson | None:
        """Note a refused form; returns the lesson when it is news (to persist), else None."""
        known = self.refused.get((operation, form))
        if known is not None and known.reason == reason:
            return None
        lesson = Lesson(self.target, operation, form, reason[:1000], datetime.now(UTC))
        self.refused[(operation, form)] = lesson
        REFUSED.labels(self.target, operation, form).set(1)
        log.warning("%s: %s does not work for this app (%s); the next form of %s is used from now on",
                    self.target, DESCRIBE[(operation, form)], reason, operation,
                    extra={"target": self.target, "operation": operation, "form": form})
        return lesson

    def describe(self, caps: Capabilities) -> dict[str, Any]:
        """Per operation: the form in use and the forms learned refused (with why and when)."""
        out: dict[str, Any] = {}
        for operation in LADDERS:
            out[operation] = {
                "using": self.form(operation, caps),
                "refused": {form: {"reason": lesson.reason, "learned_at": lesson.learned_at.isoformat()}
                            for (op, form), lesson in self.refused.items() if op == operation},
            }
        return out
