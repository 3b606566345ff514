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

from provisioner.scim.config import MAX_FILTER_DEPTH, MAX_FILTER_TERMS
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


_COMPARISONS: Final = frozenset({"EQ", "NE", "CO", "SW", "EW", "GT", "GE", "LT", "LE", "PR"})
_OPENING: Final = frozenset({"LPAREN", "LBRACKET"})
_CLOSING: Final = frozenset({"RPAREN", "RBRACKET"})


def _bounded_tokens(text: str) -> list[Any]:
    """The filter's tokens, refused (400 invalidFilter) as soon as it holds more than
    :data:`~provisioner.scim.config.MAX_FILTER_TERMS` comparisons or nests deeper than
    :data:`~provisioner.scim.config.MAX_FILTER_DEPTH`.

    The library's parser is iterative, but its tree is as deep as the filter's nesting and
    ``or``/``and`` chains, and compiling that tree recurses: without these limits 500 nested
    parentheses or a 2,000-term ``or`` chain exhausted the stack (a 500).
    """
    tokens: list[Any] = []
    terms = depth = 0
    for token in SCIMLexer().tokenize(text):
        kind = token.type
        if kind in _COMPARISONS:
            terms += 1
            if terms > MAX_FILTER_TERMS:
                raise InvalidFilterException(
                    detail=f"The filter has more than {MAX_FILTER_TERMS} comparisons; "
                    f"split it into several requests"
                )
        elif kind in _OPENING:
            depth += 1
            if depth > MAX_FILTER_DEPTH:
                raise InvalidFilterException(
                    detail=f"The filter nests parentheses or brackets more than "
                    f"{MAX_FILTER_DEPTH} deep"
                )
        elif kind in _CLOSING:
            depth -= 1
        tokens.append(token)
    return tokens


@lru_cache(maxsize=1024)
def _parse_normalised(text: str) -> fast.AST:
    try:
        tree = SCIMParser().parse(iter(_bounded_tokens(text)))
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
