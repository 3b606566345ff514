"""Request body limits, enforced while the body streams and before any signature or token check.

A pure ASGI middleware, outermost: for a request under a limited prefix it refuses a declared
``Content-Length`` above the limit without reading a byte, and otherwise reads the body chunk by
chunk, answering ``413`` as soon as the count passes the limit (so at most the limit plus one
chunk is ever held), then hands the application the body it read. Under ``/scim/v2`` the answer
is a SCIM Error (RFC 7644 §3.12), elsewhere RFC 7807 problem+json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioner.api.problems import PROBLEM

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # the application never reads their bodies


@dataclass(frozen=True, slots=True)
class BodyLimit:
    prefix: str
    max_bytes: int
    scim: bool = False  # answer a SCIM Error instead of problem+json

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: Sequence[BodyLimit]) -> None:
        self.app = app
        self.limits = tuple(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        rule = next((r for r in self.limits if r.matches(scope["path"])), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > rule.max_bytes:
            await _too_large(send, scope, rule, f"{declared} bytes declared")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.max_bytes:
                await _too_large(send, scope, rule, f"more than {rule.max_bytes} bytes sent")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read, as one message; then the real channel (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, scope: Scope, rule: BodyLimit, what: str) -> None:
    detail = f"body: at most {rule.max_bytes} bytes ({what}); the rest was not read and nothing was stored"
    body: dict[str, Any]
    if rule.scim:
        body = {"schemas": [SCIM_ERROR_SCHEMA], "status": "413", "detail": detail}
        media = "application/scim+json"
    else:
        body = {"type": "urn:provisioner:problem:too-large", "title": "Payload too large", "status": 413,
                "detail": detail, "instance": scope["path"]}
        media = PROBLEM
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(raw)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": raw})
