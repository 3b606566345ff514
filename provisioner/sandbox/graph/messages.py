"""The request and response values handlers see, the same for direct calls and ``$batch`` items.

A direct HTTP request and a JSON-batch sub-request are both reduced to a :class:`GraphRequest`
and answered with a :class:`GraphResponse`, so each Graph operation is implemented once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass(slots=True)
class GraphRequest:
    """One Graph call (direct or a ``$batch`` item).

    ``path`` is percent-decoded and relative to the version root, with a leading slash
    (``/users/{id}``); ``query`` holds decoded query options (``$filter`` and so on);
    ``base_url`` is the absolute version root the caller used (``http://127.0.0.1:8400/v1.0``),
    from which paging links are built; ``params`` are the path parameters of the matched route.
    """

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    base_url: str = "https://graph.microsoft.com/v1.0"
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class GraphResponse:
    """A status, an optional JSON body and response headers."""

    status: int
    body: JsonObject | None = None
    headers: dict[str, str] = field(default_factory=dict)
