"""Entra ID's rules for a userPrincipalName and a user's mailNickname: the one statement of them.

From Microsoft's documentation (entra-docs "Username policies", Graph user resource; see
/work/shared/reference/graph.md, "Directory data rules"):

- characters ``A-Z a-z 0-9 ' . - _ ! # ^ ~`` only (no accents, no ``&``, no spaces);
- exactly one ``@``; no ``.`` immediately before it;
- at most 64 characters before the ``@`` (``LOCAL_MAX``), 48 after (``DOMAIN_MAX``), 113 in all;
- the domain is one of the tenant's verified domains (checked by the tenant, not here);
- leading or doubled dots are not documented either way: refusing them is the safe choice.

mailNickname: required, at most 64 characters; the service gives the UPN's local part, so it
follows the same character rules.

``problem`` answers what is wrong with a value (None: valid). The login maker
(:mod:`provisioner.identities.naming`), the HR intake (a login override) and the Graph sandbox
all ask it, so the three never disagree.
"""

from __future__ import annotations

import re
from typing import Final

LOCAL_MAX: Final = 64
DOMAIN_MAX: Final = 48
UPN_MAX: Final = 113
MAIL_NICKNAME_MAX: Final = 64
SUFFIX_ROOM: Final = 3  # a collision suffix up to "999" still fits in LOCAL_MAX

ALLOWED_LOCAL: Final = "A-Za-z0-9'.\\-_!#^~"
_LOCAL_CHARS = re.compile(f"^[{ALLOWED_LOCAL}]+$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def local_part_problem(local: str, *, what: str = "the part before '@'") -> str | None:
    """What makes ``local`` unusable before the ``@`` of a UPN (or as a mailNickname), or None."""
    if not local:
        return f"{what} is empty"
    if len(local) > LOCAL_MAX:
        return f"{what} has {len(local)} characters, more than {LOCAL_MAX}"
    if not _LOCAL_CHARS.match(local):
        bad = next(ch for ch in local if not re.match(f"[{ALLOWED_LOCAL}]", ch))
        return f"{what} holds {bad!r}: only A-Z a-z 0-9 ' . - _ ! # ^ ~ are allowed"
    if local.startswith("."):
        return f"{what} starts with '.'"
    if local.endswith("."):
        return f"{what} ends with '.' (no '.' may come right before '@')"
    if ".." in local:
        return f"{what} holds '..'"
    return None


_SERVICE_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")


def login_override_problem(local: str) -> str | None:
    """What makes HR's ``preferred_login`` unusable as given, or None. Stricter than Entra ID:
    the service's logins hold only letters, digits, ``.``, ``-`` and ``_``, and start and end
    with a letter or digit (so that an override is used exactly as HR wrote it)."""
    if local and len(local) <= LOCAL_MAX and not _SERVICE_CHARS.match(local):
        bad = next(ch for ch in local if not re.match(r"[A-Za-z0-9._-]", ch))
        return f"the login holds {bad!r}: only letters a-z, digits and . - _ are used in logins"
    found = local_part_problem(local, what="the login")
    if found:
        return found
    if local[0] in "-_" or local[-1] in "-_":
        return "the login starts or ends with '-' or '_'"
    return None


def domain_problem(domain: str) -> str | None:
    if not domain:
        return "the domain is empty"
    if len(domain) > DOMAIN_MAX:
        return f"the domain has {len(domain)} characters, more than {DOMAIN_MAX}"
    if not all(_DOMAIN_LABEL.match(label) for label in domain.split(".")):
        return f"the domain {domain!r} is not a valid DNS name"
    return None


def problem(upn: object) -> str | None:
    """What makes ``upn`` an invalid userPrincipalName, or None when Entra ID would accept its form."""
    if not isinstance(upn, str):
        return "not a string"
    if upn.count("@") != 1:
        return f"holds {upn.count('@')} '@' (exactly one is needed)"
    if len(upn) > UPN_MAX:
        return f"has {len(upn)} characters, more than {UPN_MAX}"
    local, _, domain = upn.partition("@")
    return local_part_problem(local) or domain_problem(domain)


def mail_nickname_problem(nickname: object) -> str | None:
    """What makes ``nickname`` an invalid mailNickname of a user, or None."""
    if not isinstance(nickname, str):
        return "not a string"
    return local_part_problem(nickname, what="the mailNickname")
