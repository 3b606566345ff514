"""Logins (userPrincipalName / userName) the service assigns: one per person, unique."""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from typing import Any

_INVALID = re.compile(r"[^a-z0-9._-]+")


def _ascii(value: str) -> str:
    replaced = value.replace("ß", "ss").replace("æ", "ae").replace("ø", "o").replace("ł", "l")
    return unicodedata.normalize("NFKD", replaced).encode("ascii", "ignore").decode()


@functools.lru_cache(maxsize=16)
def _template_fields(template: str) -> frozenset[str]:
    """The attributes a template names (``{given_name[0]}`` names ``given_name``)."""
    names = (field for _, field, _, _ in string.Formatter().parse(template) if field)
    return frozenset(re.split(r"[.\[]", name, maxsplit=1)[0] for name in names)


def login_local_part(template: str, attrs: dict[str, Any]) -> str:
    """``{given_name}.{family_name}`` → ``ada.lovelace``: lower-case ASCII a UPN may hold."""
    try:
        used = _template_fields(template)
    except ValueError:  # not a valid template at all: format() below says so
        used = frozenset(attrs)
    fields = {k: _ascii(str(v or "")).strip().lower().replace(" ", "") for k, v in attrs.items()
              if k in used and not isinstance(v, dict)}
    try:
        local = template.format(**fields)
    except KeyError as exc:
        raise ValueError(f"login_template names an unknown attribute {exc}") from exc
    local = _INVALID.sub("", local).strip("._-")
    local = re.sub(r"\.{2,}", ".", local)
    return local[:60] or str(attrs.get("employee_id", "user")).lower()


def with_suffix(local: str, domain: str, suffix: int) -> str:
    """``ada.lovelace@x`` then ``ada.lovelace2@x``, ``ada.lovelace3@x``... on collisions."""
    return f"{local}{suffix if suffix > 1 else ''}@{domain}"
