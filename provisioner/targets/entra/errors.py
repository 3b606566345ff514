"""The one place where Microsoft Graph's answers become the service's ``Outcome``s.

Three sources feed it: an ``ODataError``/``APIError`` raised by the SDK for a single call,
a raw sub-response from a JSON ``$batch`` (status, headers, body: the SDK drops those
bodies, see graph.md), and exceptions from the HTTP stack (httpx, azure-identity).

Rules (Graph docs: "Microsoft Graph error responses", "throttling guidance"):

- 2xx: DONE
- 429, 408 and every 5xx: TRANSIENT, with ``retry_after`` from ``Retry-After`` (seconds or
  an HTTP date). A 429 may arrive per item inside a 200 ``$batch``.
- 401, 403: STOP (credentials or consent: the whole target refuses us); a 403 on one
  ``$batch`` sub-request is about that object only: BAD_REQUEST
- 404, or any status with code ``Request_ResourceNotFound``: NOT_FOUND
- 400/409 whose message says "already exist" (``members/$ref``, ``members@odata.bind``) or
  "same value for property" (UPN, mail, proxyAddresses collisions): EXISTS
- any other 4xx: BAD_REQUEST, with Graph's code and message as detail
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from provisioner.targets.contract import OpResult, Outcome, TargetError

EXISTS_MARKERS = ("already exist", "same value for property")
NOT_FOUND_CODES = frozenset({"Request_ResourceNotFound", "ResourceNotFound", "itemNotFound"})
MAX_DETAIL = 400


@dataclass(frozen=True, slots=True)
class Mapped:
    """An answer from Graph, classified."""

    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None
    status_code: int | None = None
    code: str | None = None

    def result(self, op_id: int, **extra: Any) -> OpResult:
        return OpResult(
            op_id=op_id,
            outcome=self.outcome,
            detail=self.detail,
            retry_after=self.retry_after,
            status_code=self.status_code,
            **extra,
        )

    def error(self) -> TargetError:
        return TargetError(
            self.outcome, self.detail, retry_after=self.retry_after, status_code=self.status_code
        )


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive header lookup over httpx.Headers, plain dicts or None."""
    if not headers:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            if isinstance(value, (list, tuple, set)):
                return ", ".join(str(v) for v in value) if value else None
            return str(value)
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _detail(status: int | None, code: str | None, message: str | None) -> str:
    parts = [str(status) if status is not None else "", code or "", message or ""]
    head = " ".join(p for p in parts[:2] if p)
    text = f"{head}: {parts[2]}" if parts[2] else head
    return text[:MAX_DETAIL]


def classify(
    status: int,
    code: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> Mapped:
    """Map one Graph answer (status, OData error code and message) to an outcome."""
    detail = _detail(status, code, message)
    if 200 <= status < 300:
        return Mapped(Outcome.DONE, "", None, status, code)
    if status == 429 or status == 408 or status >= 500:
        return Mapped(Outcome.TRANSIENT, detail, retry_after, status, code)
    if status in (401, 403):
        return Mapped(Outcome.STOP, detail, None, status, code)
    if status == 404 or (code in NOT_FOUND_CODES):
        return Mapped(Outcome.NOT_FOUND, detail, None, status, code)
    lowered = (message or "").lower()
    if status in (400, 409) and any(marker in lowered for marker in EXISTS_MARKERS):
        return Mapped(Outcome.EXISTS, detail, None, status, code)
    return Mapped(Outcome.BAD_REQUEST, detail, None, status, code)


def _error_parts(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from an OData error body ``{"error": {"code", "message"}}``."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            return None, body.decode("utf-8", "replace")[:MAX_DETAIL] or None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None, body[:MAX_DETAIL] or None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message")
            return (str(code) if code else None, str(message) if message else None)
    return None, None


def from_batch_item(item: Mapping[str, Any]) -> Mapped:
    """Classify one ``$batch`` sub-response: ``{"id", "status", "headers", "body"}``.

    Each sub-request is throttled on its own, so a 429 here carries its own Retry-After.
    """
    try:
        status = int(item.get("status", 0))
    except (TypeError, ValueError):
        status = 0
    if status == 0:
        return Mapped(Outcome.TRANSIENT, "batch sub-response without a status", None, None)
    headers = item.get("headers") if isinstance(item.get("headers"), Mapping) else None
    code, message = _error_parts(item.get("body")) if status >= 300 else (None, None)
    if status == 403:
        # Inside a batch, 403 Authorization_RequestDenied is about one object (a protected
        # admin account, say), not our credentials: refuse that operation, not the target.
        return Mapped(Outcome.BAD_REQUEST, _detail(status, code, message), None, status, code)
    return classify(status, code, message, parse_retry_after(header(headers, "Retry-After")))


def from_api_error(exc: Any) -> Mapped:
    """Classify an ``ODataError`` (or any kiota ``APIError``) raised by the SDK."""
    status = getattr(exc, "response_status_code", None)
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) if err is not None else None
    message = getattr(err, "message", None) if err is not None else None
    if not message:
        message = getattr(exc, "message", None) or None
    retry_after = parse_retry_after(header(getattr(exc, "response_headers", None), "Retry-After"))
    if status is None:
        return Mapped(Outcome.TRANSIENT, _detail(None, code, message or str(exc)), retry_after)
    return classify(int(status), code, message, retry_after)


def remote_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that are an answer (or a missing answer) from the remote side.

    Anything else is a bug in this process and should propagate, not become a retry.
    """
    from azure.core.exceptions import AzureError
    from kiota_abstractions.api_error import APIError
    from kiota_authentication_azure._exceptions import HTTPError as KiotaAuthError

    return (TargetError, APIError, httpx.HTTPError, AzureError, KiotaAuthError)


def from_exception(exc: BaseException) -> Mapped:
    """Classify anything a Graph call can raise.

    - SDK ``APIError``/``ODataError``: by status and code (see :func:`classify`)
    - ``TargetError`` (including the dry-run guard): its own outcome
    - httpx timeouts and transport errors (connect, read, protocol): TRANSIENT
    - azure-identity ``ClientAuthenticationError`` (token refused): STOP;
      ``ServiceRequestError`` (token endpoint unreachable): TRANSIENT
    - kiota's auth ``HTTPError`` ("Only https is supported"): STOP (configuration)
    - anything else: TRANSIENT, with the exception type as detail
    """
    from kiota_abstractions.api_error import APIError

    if isinstance(exc, TargetError):
        return Mapped(exc.outcome, exc.detail, exc.retry_after, exc.status_code)
    if isinstance(exc, APIError):
        return from_api_error(exc)
    if isinstance(exc, httpx.TimeoutException):
        return Mapped(Outcome.TRANSIENT, f"timeout: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        return Mapped(Outcome.TRANSIENT, f"transport error: {type(exc).__name__}: {exc}"[:MAX_DETAIL])
    try:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
    except ImportError:  # pragma: no cover - azure-core is a dependency
        ClientAuthenticationError = ServiceRequestError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, ClientAuthenticationError):
        return Mapped(Outcome.STOP, f"credentials refused: {exc}"[:MAX_DETAIL])
    if isinstance(exc, ServiceRequestError):
        return Mapped(Outcome.TRANSIENT, f"token endpoint unreachable: {exc}"[:MAX_DETAIL])
    try:
        from kiota_authentication_azure._exceptions import HTTPError as KiotaAuthError
    except ImportError:  # pragma: no cover
        KiotaAuthError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, KiotaAuthError):
        return Mapped(Outcome.STOP, f"refused to authenticate the request: {exc}"[:MAX_DETAIL])
    return Mapped(Outcome.TRANSIENT, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL])
