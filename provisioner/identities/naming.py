"""Logins (userPrincipalName / userName) the service assigns: one per person, unique.

A login's local part comes from HR's ``preferred_login`` when HR sets one, otherwise from the
login owner's ``login_template`` (``{given_name}.{family_name}``) with every name transliterated
to ASCII by anyascii (``Ørjan Øye`` → ``orjan.oye``, ``Дмитрий`` → ``dmitriy``, ``王小明`` →
``wangxiaoming``). It then obeys Entra ID's rules (:mod:`provisioner.identities.upn`): only
``a-z 0-9 . - _``, no leading, trailing or doubled dots, at most 64 characters *including* the
collision suffix (``2``, ``3``, ...). Reserved logins (``admin``, ``postmaster``...) are skipped
as if taken. A name that leaves nothing (all punctuation) falls back to the employee id.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field
from typing import Any, Final

from anyascii import anyascii

from provisioner.identities import upn

# Mailbox and role names RFC 2142 reserves, plus the usual administrative ones: the defaults of
# the Entra target's ``accounts.reserved_logins``.
DEFAULT_RESERVED: Final = (
    "abuse", "admin", "administrator", "hostmaster", "info", "noc", "no-reply", "noreply",
    "postmaster", "root", "security", "support", "sysadmin", "webmaster", "www",
)
KEEP, RENAME = "keep", "rename"  # what a name change does to a login (``on_name_change``)

_NOT_IN_NAME = re.compile(r"[^a-z0-9.\-]+")  # within one name: spaces and apostrophes go
_INVALID = re.compile(r"[^a-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_EDGE = "._-"
# The attributes that make a login: a change of one of them is a name change.
NAME_ATTRIBUTES: Final = frozenset({"given_name", "family_name", "preferred_name", "preferred_login"})


@dataclass(frozen=True, slots=True)
class Naming:
    """How the service names people's logins (from the login owner's, Entra ID's, settings)."""

    template: str = "{given_name}.{family_name}"
    domain: str = "example.com"
    reserved: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_RESERVED))
    on_name_change: str = KEEP
    target: str | None = None  # the login owner (the Entra target) these settings come from
    # Targets whose account name is the login: the owner, and SCIM apps whose userName maps {login}
    # (under ``rename`` their accounts follow a new login).
    login_targets: frozenset[str] = frozenset()

    def is_reserved(self, local: str) -> bool:
        return local.casefold() in self.reserved


def ascii_name(value: str) -> str:
    """A name in ASCII lower case, each letter transliterated (upper and lower case alike)."""
    return anyascii(value).lower()


@functools.lru_cache(maxsize=16)
def _template_fields(template: str) -> frozenset[str]:
    """The attributes a template names (``{given_name[0]}`` names ``given_name``)."""
    names = (field for _, field, _, _ in string.Formatter().parse(template) if field)
    return frozenset(re.split(r"[.\[]", name, maxsplit=1)[0] for name in names)


def _clean(local: str, limit: int) -> str:
    """Only the characters the service gives, no doubled dots, cut to ``limit`` and only then
    stripped of ``._-`` at both ends (a cut never leaves a dot before the ``@``)."""
    local = _DOTS.sub(".", _INVALID.sub("", local)).strip(_EDGE)
    return local[:limit].strip(_EDGE)


def login_local_part(template: str, attrs: dict[str, Any]) -> str:
    """``{given_name}.{family_name}`` → ``ada.lovelace``: at most 64 characters Entra accepts.

    HR's ``preferred_login`` wins over the template (intake checked it against the rules)."""
    override = attrs.get("preferred_login")
    if override:
        local = _clean(str(override).lower(), upn.LOCAL_MAX)
        if local:
            return local
    try:
        used = _template_fields(template)
    except ValueError:  # not a valid template at all: format() below says so
        used = frozenset(attrs)
    fields = {k: _NOT_IN_NAME.sub("", ascii_name(str(v or "")).strip()) for k, v in attrs.items()
              if k in used and not isinstance(v, dict)}
    try:
        local = template.format(**fields)
    except KeyError as exc:
        raise ValueError(f"login_template names an unknown attribute {exc}") from exc
    return (_clean(local, upn.LOCAL_MAX)
            or _clean(ascii_name(str(attrs.get("employee_id") or "")), upn.LOCAL_MAX) or "user")


def with_suffix(local: str, domain: str, suffix: int) -> str:
    """``ada.lovelace@x`` then ``ada.lovelace2@x``, ``ada.lovelace3@x``... on collisions; the
    local part is cut so that it stays within 64 characters with its suffix."""
    tail = str(suffix) if suffix > 1 else ""
    head = _clean(local, upn.LOCAL_MAX - len(tail)) or "user"
    return f"{head}{tail}@{domain}"


def candidate(naming: Naming, local: str, suffix: int) -> tuple[str, int]:
    """The login with ``suffix`` or, when that one is reserved, the next suffix that is not."""
    while True:
        login = with_suffix(local, naming.domain, suffix)
        if not naming.is_reserved(login.partition("@")[0]):
            return login, suffix
        suffix += 1


def name_changed(changed: Any) -> bool:
    """Whether a change of these attributes changes the name a login is made from."""
    return bool(NAME_ATTRIBUTES & set(changed))
