"""Canonical JSON (sorted keys, compact) for hashes, and fast JSON for database columns."""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, non-JSON values as strings: the same value, the same bytes."""
    return orjson.dumps(value, option=_OPTS, default=str)


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def loads(value: str | bytes) -> Any:
    return orjson.loads(value)
