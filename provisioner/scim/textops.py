"""String helpers shared by the filter compiler, the request parsing and the hot read path: LIKE
escaping, the index-friendly prefix range of ``sw`` on SQLite, and strings no database stores."""

from __future__ import annotations

from typing import Final

LIKE_ESCAPE: Final = "\\"

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def escape_like(text: str) -> str:
    """``text`` with the LIKE wildcards and the escape character escaped (``ESCAPE '\\'``)."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def sqlite_lower(text: str) -> str:
    """What SQLite's built-in ``lower()`` returns: only ASCII letters are folded."""
    return text.translate(_ASCII_LOWER)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1])
        if code < 0x10FFFF:
            code += 1
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored or compared, or None when it can.

    JSON lets a client send ``\\u0000`` and unpaired surrogates such as ``\\ud800`` (RFC 8259
    §8.2); a PostgreSQL ``text`` holds no NUL and neither driver encodes a lone surrogate, so
    such a value is refused with a 400 instead of failing in the database.
    """
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "an unpaired surrogate"
    return None
