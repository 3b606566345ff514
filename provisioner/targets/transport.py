"""HTTP transports shared by every connector: call recording and the dry-run guard.

Both wrap an ``httpx.AsyncBaseTransport``, so they sit *under* an SDK's own middleware
(retries, redirects, auth): the recorder sees each request that really goes on the wire,
and the dry-run guard refuses writes at the last possible point, where no code path can
forget it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter as _Tally

import httpx
from prometheus_client import Counter, Histogram

from provisioner.targets.contract import Outcome, TargetError

log = logging.getLogger("provisioner.calls")

TARGET_CALLS = Counter(
    "provisioner_target_calls_total",
    "HTTP calls made to target systems",
    ["target", "method", "status"],
)
TARGET_CALL_SECONDS = Histogram(
    "provisioner_target_call_seconds",
    "Latency of HTTP calls made to target systems",
    ["target", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

READ_METHODS = frozenset({"GET", "HEAD"})


class DryRunBlocked(TargetError):
    """A write refused by :class:`DryRunTransport`; it never left the process.

    A ``TargetError`` with outcome STOP, so callers that do not know about dry-run still
    halt instead of treating the refusal as a remote answer.
    """

    def __init__(self, method: str, path: str) -> None:
        super().__init__(Outcome.STOP, f"dry run: {method} {path} refused before sending")
        self.method = method
        self.path = path


def _batch_is_read_only(body: bytes) -> bool:
    """True when a JSON ``$batch`` body holds only GET/HEAD sub-requests."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return False
    requests = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(requests, list) or not requests:
        return False
    return all(
        isinstance(item, dict) and str(item.get("method", "")).upper() in READ_METHODS
        for item in requests
    )


class DryRunTransport(httpx.AsyncBaseTransport):
    """Lets reads through and refuses every write by raising :class:`DryRunBlocked`.

    Reads are GET and HEAD, ``POST .../$batch`` whose sub-requests are all GET/HEAD (Graph
    reads many objects in one call that way) and SCIM's ``POST .../.search`` (RFC 7644 §3.4.3).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method.upper()
        path = request.url.path
        if method not in READ_METHODS:
            allowed = False
            if method == "POST" and path.rstrip("/").endswith("/$batch"):
                allowed = _batch_is_read_only(await request.aread())
            elif method == "POST" and path.rstrip("/").endswith("/.search"):
                allowed = True  # SCIM query by POST (RFC 7644 §3.4.3): a read
            if not allowed:
                raise DryRunBlocked(method, path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Counts, times and logs every HTTP call, one structured record per call.

    The record holds target, method, path (no query string: filters can carry personal
    data), status and milliseconds; never headers or bodies, so no token or password can
    reach a log. ``status`` is the HTTP status, ``"error"`` when the transport raised, or
    ``"blocked"`` when the dry-run guard refused the call (not counted in ``calls``).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, target: str) -> None:
        self.inner = inner
        self.target = target
        self.calls = 0
        self.calls_by_method: _Tally[str] = _Tally()
        self.blocked = 0

    def reset(self) -> None:
        self.calls = 0
        self.calls_by_method.clear()
        self.blocked = 0

    def _record(self, method: str, path: str, status: str, seconds: float) -> None:
        TARGET_CALLS.labels(self.target, method, status).inc()
        TARGET_CALL_SECONDS.labels(self.target, method).observe(seconds)
        ms = round(seconds * 1000, 1)
        log.info(
            "%s %s %s %s %.1fms",
            self.target,
            method,
            path,
            status,
            ms,
            extra={"target": self.target, "method": method, "path": path, "status": status, "ms": ms},
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method.upper()
        path = request.url.path
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except DryRunBlocked:
            self.blocked += 1
            self._record(method, path, "blocked", time.perf_counter() - started)
            raise
        except BaseException:
            self.calls += 1
            self.calls_by_method[method] += 1
            self._record(method, path, "error", time.perf_counter() - started)
            raise
        self.calls += 1
        self.calls_by_method[method] += 1
        self._record(method, path, str(response.status_code), time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
