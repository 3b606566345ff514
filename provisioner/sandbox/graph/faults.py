"""Fault injection: scripted failures for tests and demos.

``fail_next`` answers the next matching requests with a chosen Graph error; ``throttle_storm``
answers the next requests, whatever they are, with 429. Both apply equally to direct requests and
to ``$batch`` items, each item counting as one request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.sandbox.graph.errors import GraphError, too_many_requests


@dataclass(slots=True)
class FaultRule:
    """Answer the next ``remaining`` requests matching ``method`` and ``path`` with an error."""

    method: str  # upper-case, or "*" for any
    path: re.Pattern[str]  # searched in the path after /v1.0, e.g. "/users/{id}"
    status: int
    code: str
    message: str
    remaining: int
    retry_after: int | None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.path.search(path) is not None

    def error(self) -> GraphError:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return GraphError(self.status, self.code, self.message, headers=headers)


class FaultInjector:
    """Pending injected failures, consumed in the order they were scripted."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._storm_left = 0
        self._storm_retry_after = 1

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        code: str,
        message: str,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        self._rules.append(
            FaultRule(method.upper(), re.compile(path_regex), status, code, message, times, retry_after)
        )

    def throttle_storm(self, count: int, retry_after: int = 1) -> None:
        self._storm_left = count
        self._storm_retry_after = retry_after

    def storm(self) -> GraphError | None:
        """A 429 if a storm is under way (using up one of its requests), else None."""
        if self._storm_left <= 0:
            return None
        self._storm_left -= 1
        return too_many_requests(
            self._storm_retry_after, "Too many requests: throttle storm injected by the Graph sandbox."
        )

    def match(self, method: str, path: str) -> FaultRule | None:
        """The first pending rule for this request, without using it up."""
        if not self._rules:
            return None
        return next((rule for rule in self._rules if rule.matches(method, path)), None)

    def consume(self, rule: FaultRule) -> GraphError:
        """Use up one occurrence of ``rule`` and return its error."""
        rule.remaining -= 1
        if rule.remaining == 0:
            self._rules.remove(rule)
        return rule.error()
