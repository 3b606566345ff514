"""The route table shared by direct requests and ``$batch`` items.

Each Graph operation is registered once with its path templates and its base cost in resource
units (from Graph's identity-and-access throttling table); the sandbox resolves every request,
direct or batched, through the same :class:`Router`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provisioner.sandbox.graph.errors import BAD_REQUEST, ODATA_BAD_REQUEST, GraphError
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse

Handler = Callable[[GraphRequest], GraphResponse]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: a method, the templates that reach it, its handler and base cost."""

    method: str
    name: str  # "METHOD /first/template", the key of SandboxStats.calls_by_route
    patterns: tuple[re.Pattern[str], ...]  # the template and its aliases
    handler: Handler
    cost: int  # base resource units of a read (Graph's table; any path not listed costs 1)

    @property
    def is_write(self) -> bool:
        """Graph counts every method but GET against the write quota."""
        return self.method != "GET"


def _compile(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    # split() alternates literal text and parameter names.
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(regex + "/?")


class Router:
    """Resolves (method, path) to a route, in registration order."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}

    def add(
        self,
        method: str,
        templates: str | Sequence[str],
        handler: Handler,
        *,
        cost: int = 1,
    ) -> None:
        """Register ``handler`` for ``method`` on one template or several aliases.

        Templates use ``{name}`` for a path segment (``/users/{user_id}``). Register literal
        segments (``/users/delta``) before a parameter at the same position (``/users/{user_id}``).
        """
        template_list = [templates] if isinstance(templates, str) else list(templates)
        patterns = tuple(_compile(template) for template in template_list)
        route = Route(method, f"{method} {template_list[0]}", patterns, handler, cost)
        self._routes.setdefault(method, []).append(route)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method`` and ``path`` and its path parameters.

        As Graph does, an unknown path answers 400 ("Resource not found for the segment") and a
        known path with another method answers 405.
        """
        for route in self._routes.get(method, ()):
            for pattern in route.patterns:
                match = pattern.fullmatch(path)
                if match is not None:
                    return route, match.groupdict()
        for routes in self._routes.values():
            if any(pattern.fullmatch(path) for route in routes for pattern in route.patterns):
                raise GraphError(
                    405, BAD_REQUEST, "Specified HTTP method is not allowed for the request target."
                )
        segment = path.rstrip("/").rsplit("/", 1)[-1] or path
        raise GraphError(400, ODATA_BAD_REQUEST, f"Resource not found for the segment '{segment}'.")
