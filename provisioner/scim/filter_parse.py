"""Parsing SCIM filters (RFC 7644 §3.4.2.2) with scim2-filter-parser 0.7.0, around its lexer gaps:
no escaped quotes inside strings, single-digit numbers only, no decimals, at most 26
parameters. String and number literals are read here by a JSON-aware pre-lexer and replaced by
placeholders before the library's lexer runs; :mod:`provisioner.scim.filters` binds them back.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Final

from scim2_filter_parser import ast as fast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser
from scim2_models import InvalidFilterException

from provisioner.scim.textops import unstorable

PLACEHOLDER_PREFIX: Final = "$lit"

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_$:.\-]")


def prelex(text: str) -> tuple[str, list[Any]]:
    """Replace every string and number literal of a filter with a placeholder string.

    JSON strings (RFC 8259 escapes, ``\\"`` included) and numbers (multi-digit, negative,
    decimal, exponent) are decoded here, since scim2-filter-parser's lexer cannot; the library
    then only sees ``"$lit<n>"`` strings. Returns the rewritten filter and the literals.
    """
    out: list[str] = []
    literals: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise InvalidFilterException(detail="Unterminated string in filter")
            try:
                literal = json.loads(text[i : j + 1])
            except ValueError as exc:
                raise InvalidFilterException(detail=f"Invalid string in filter: {exc}") from exc
            if (why := unstorable(literal)) is not None:
                raise InvalidFilterException(detail=f"A string in the filter contains {why}")
            literals.append(literal)
            out.append(f'"{PLACEHOLDER_PREFIX}{len(literals) - 1}"')
            i = j + 1
            continue
        if (ch.isdigit() or ch == "-") and (i == 0 or not _NAME_CHAR.match(text[i - 1])):
            match = _NUMBER.match(text, i)
            end = match.end() if match else i
            if match and end > i and (end == n or not _NAME_CHAR.match(text[end])):
                token = match.group()
                literals.append(json.loads(token))
                out.append(f'"{PLACEHOLDER_PREFIX}{len(literals) - 1}"')
                i = end
                continue
        out.append(ch)
        i += 1
    return "".join(out), literals


@lru_cache(maxsize=1024)
def _parse_normalised(text: str) -> fast.AST:
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except InvalidFilterException:
        raise
    except Exception as exc:  # sly raises ValueError / SCIMParserError
        raise InvalidFilterException(detail=f"Invalid filter: {exc}") from exc
    if tree is None:
        raise InvalidFilterException(detail="Invalid filter: nothing to parse")
    return tree


def parse_filter(text: str) -> tuple[fast.AST, list[Any]]:
    """Parse a filter with scim2-filter-parser, after :func:`prelex`.

    The AST depends only on the filter's shape (literals are placeholders), so it is cached.
    """
    normalised, literals = prelex(text)
    return _parse_normalised(normalised), literals
