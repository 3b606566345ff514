"""Exact counts of what the sandbox was asked to do, for benchmarks and tests.

Accounting rules (every counter is exact, nothing is sampled):

- ``http_calls``: every HTTP request that reached the app, a ``$batch`` counting once, including
  ones refused for authentication.
- ``batch_calls``: ``POST /$batch`` requests; ``sub_requests``: the items executed inside them.
- Each request or batch item that names a known operation then ends in exactly one of:
  ``throttled`` (answered 429: by the limits, a throttle storm or an injected 429; it consumed no
  quota), ``reads`` (a GET that reached the directory) or ``writes`` (any other method that
  reached the directory, whether it took effect or failed, e.g. 400 for an existing member, or
  hit an injected non-429 fault).
- ``write_times``: ``time.monotonic()`` of each counted write, in order (``len == writes``).
- ``calls_by_route``: per operation ("PATCH /groups/{group_id}"), every request or item that
  resolved to it, throttled or not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class SandboxStats:
    http_calls: int = 0
    batch_calls: int = 0
    sub_requests: int = 0
    writes: int = 0
    reads: int = 0
    throttled: int = 0
    calls_by_route: Counter[str] = field(default_factory=Counter)
    write_times: list[float] = field(default_factory=list)

    def reset(self) -> None:
        """Zero every counter in place, so references held elsewhere stay valid."""
        self.http_calls = self.batch_calls = self.sub_requests = 0
        self.writes = self.reads = self.throttled = 0
        self.calls_by_route.clear()
        self.write_times.clear()
