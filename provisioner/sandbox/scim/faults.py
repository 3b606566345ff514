"""A fault-injecting HTTP transport for what scim2-server does not do by itself: slow answers
(a read timeout when slower than the client's timeout), 429 with Retry-After, 500s and 503s,
and dropped connections, before the request reaches the server (nothing applied) or after it
(applied, but the answer is lost); and, scripted only, ``ignore``: a write answered 204 that
never reaches the server (an app that says yes and keeps what it had).

Faults are either scripted (``script(kind, times=..., method=..., path=...)``, consumed in
order by matching requests) or random with a seeded generator (``chaos(rate=...)``).
``cost(per_request=..., per_operation=...)`` makes every answer take time, a Bulk request's
growing with its operations as a real app's does (past the client's read timeout the server
applies it and the client times out).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import httpx
import orjson

KINDS = ("slow", "429", "500", "503", "drop_before", "drop_after")
# Scripted only (never chosen by ``chaos``): what apps do to forms they do not support.
# "501": refused as not implemented; "ignore": answered 200 with the resource as it was,
# nothing applied (as django-scim2's group PUT does with ``members``); "ignore_204": answered
# 204 No Content, nothing applied (the client must read to find out); for Bulk a BulkResponse
# answering 204 to each operation, none applied.
FORM_KINDS = ("501", "ignore", "ignore_204")


@dataclass
class _Scripted:
    kind: str
    times: int
    method: str | None
    path: str | None
    retry_after: float
    delay: float
    contains: str | None = None


class FaultTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, seed: int = 0) -> None:
        self.inner = inner
        self.rng = random.Random(seed)
        self.scripted: list[_Scripted] = []
        self.rate = 0.0
        self.kinds: tuple[str, ...] = KINDS
        self.retry_after = 0.05
        self.delay = 0.2
        self.per_request = 0.0
        self.per_operation = 0.0
        self.injected: Counter[str] = Counter()
        self.forwarded = 0

    def script(self, kind: str, *, times: int = 1, method: str | None = None, path: str | None = None,
               retry_after: float = 0.05, delay: float = 0.2, contains: str | None = None) -> None:
        """``contains``: only requests whose body holds this text (e.g. ``members[value eq``)."""
        assert kind in KINDS + FORM_KINDS, kind
        self.scripted.append(_Scripted(kind, times, method, path, retry_after, delay, contains))

    def chaos(self, rate: float, *, kinds: tuple[str, ...] = KINDS, retry_after: float = 0.05,
              delay: float = 0.2) -> None:
        """Fault about ``rate`` of all writes and reads at random (seeded)."""
        self.rate, self.kinds, self.retry_after, self.delay = rate, kinds, retry_after, delay

    def cost(self, *, per_request: float = 0.0, per_operation: float = 0.0) -> None:
        """Every request takes ``per_request`` seconds, plus ``per_operation`` for each
        operation of a Bulk request (one for any other request)."""
        self.per_request, self.per_operation = per_request, per_operation

    def _cost_of(self, request: httpx.Request) -> float:
        operations = 1
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/Bulk"):
            body = orjson.loads(request.content or b"{}")
            operations = len(body.get("Operations") or []) if isinstance(body, dict) else 1
        return self.per_request + self.per_operation * operations

    def _pick(self, request: httpx.Request) -> tuple[str, float, float] | None:
        for item in self.scripted:
            if item.times <= 0:
                continue
            if item.method and request.method != item.method:
                continue
            if item.path and item.path not in request.url.path:
                continue
            if item.contains and item.contains not in (request.content or b"").decode(errors="replace"):
                continue
            item.times -= 1
            return item.kind, item.retry_after, item.delay
        if self.rate and self.rng.random() < self.rate:
            return self.rng.choice(self.kinds), self.retry_after, self.delay
        return None

    @staticmethod
    def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
        return httpx.Response(status, content=orjson.dumps(body),
                              headers={"Content-Type": "application/scim+json", **(headers or {})})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._pick(request)
        if fault is None and (self.per_request or self.per_operation):
            fault = "slow", self.retry_after, self._cost_of(request)
        elif fault is None:
            self.forwarded += 1
            return await self.inner.handle_async_request(request)
        kind, retry_after, delay = fault
        self.injected[kind] += 1
        if kind == "slow":
            timeout = (request.extensions.get("timeout") or {}).get("read")
            if timeout is not None and delay > timeout:
                # Slower than the client waits (in-process, httpx enforces no timeout): the
                # server applies the request, the client gives up before the answer.
                self.forwarded += 1
                await (await self.inner.handle_async_request(request)).aread()
                await asyncio.sleep(timeout)
                raise httpx.ReadTimeout("no answer within the read timeout (injected)", request=request)
            await asyncio.sleep(delay)
        elif kind == "429":
            return self._error(429, "Too many requests", {"Retry-After": f"{retry_after:g}"})
        elif kind in ("500", "503"):
            return self._error(int(kind), "injected server error", {"Retry-After": "0"} if kind == "503" else None)
        elif kind == "501":
            return self._error(501, "not implemented")
        elif kind == "ignore_204":
            if request.url.path.rstrip("/").endswith("/Bulk"):  # every operation "done", none applied
                ops = (orjson.loads(request.content or b"{}") or {}).get("Operations") or []
                items = [{"method": o.get("method"), "bulkId": o.get("bulkId"), "status": "204"} for o in ops]
                body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": items}
                return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/scim+json"})
            return httpx.Response(204)
        elif kind == "ignore":
            # Nothing applied; the answer is the resource as it is (a 2xx that is no proof).
            read = httpx.Request("GET", request.url.copy_with(query=None),
                                 headers={k: v for k, v in request.headers.items() if k.lower() == "authorization"})
            current = await self.inner.handle_async_request(read)
            await current.aread()
            return httpx.Response(200, content=current.content, headers={"Content-Type": "application/scim+json"})
        elif kind == "drop_before":
            raise httpx.ConnectError("connection refused (injected)", request=request)
        self.forwarded += 1
        response = await self.inner.handle_async_request(request)
        if kind == "drop_after":
            await response.aread()  # the server applied it; the answer never arrives
            raise httpx.RemoteProtocolError("server disconnected without sending a response (injected)",
                                            request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
