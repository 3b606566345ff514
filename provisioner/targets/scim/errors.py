"""The one place where a SCIM server's answers become the service's outcomes.

RFC 7644 §3.12 error bodies carry ``status``, ``scimType`` and ``detail``; they are parsed with
scim2-models' ``Error``. The connector never retries: TRANSIENT comes back with the server's
Retry-After and the queue decides (``provisioner.queue.decide``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from scim2_models import Error

from provisioner.targets.contract import OpResult, Outcome, TargetError

# 412: the resource changed since it was read (ETag, RFC 7644 §3.14): read again and retry.
_TRANSIENT_STATUS = frozenset({408, 412, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer (a whole call, or one operation of a Bulk response) as an outcome."""

    outcome: Outcome
    status: int | None
    detail: str = ""
    scim_type: str | None = None
    retry_after: float | None = None

    def error(self, detail: str | None = None) -> TargetError:
        """This answer as a whole-call failure (for reads that must succeed)."""
        return TargetError(self.outcome, detail or self.detail, retry_after=self.retry_after,
                           status_code=self.status)


def retry_after(headers: httpx.Headers | dict[str, str] | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = (headers or {}).get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))  # delta-seconds (a fraction is tolerated)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_fields(body: Any) -> tuple[str | None, str]:
    if not isinstance(body, dict):
        return None, ""
    try:
        error = Error.model_validate(body)
    except Exception:  # not an RFC 7644 §3.12 body: keep what we can read
        return body.get("scimType"), str(body.get("detail") or body.get("message") or "")[:500]
    return (str(error.scim_type) if error.scim_type else None), (error.detail or "")[:500]


def outcome_of(status: int, body: Any = None, headers: httpx.Headers | dict[str, str] | None = None) -> Answer:
    """Map a status code (and the SCIM error body) to an outcome."""
    if 200 <= status < 300 or status == 304:
        return Answer(Outcome.DONE, status)
    scim_type, detail = _error_fields(body)
    detail = f"HTTP {status}" + (f" {scim_type}" if scim_type else "") + (f": {detail}" if detail else "")
    wait = retry_after(headers)
    if status in (401, 403):
        outcome = Outcome.STOP  # credentials or permissions: halt the target, keep the work
    elif status == 404:
        outcome = Outcome.NOT_FOUND
    elif status == 409 or scim_type == "uniqueness":
        outcome = Outcome.EXISTS  # RFC 7644 §3.3: 409 uniqueness on create
    elif status == 400 and scim_type == "noTarget":
        outcome = Outcome.NOT_FOUND  # §3.5.2: nothing matched the path (a member already gone)
    elif status in _TRANSIENT_STATUS:
        outcome = Outcome.TRANSIENT
    elif 500 <= status < 600 and status != 501:
        outcome = Outcome.TRANSIENT
    else:
        outcome = Outcome.BAD_REQUEST  # other 4xx, 501: retrying the same request will not help
    return Answer(outcome, status, detail, scim_type, wait)


def outcome_of_exception(exc: BaseException) -> Answer:
    """Timeouts, refused and dropped connections: the request may or may not have been applied.
    Retrying is safe because every operation is idempotent in effect (a create answered 409
    is linked, a member added twice is still one member)."""
    return Answer(Outcome.TRANSIENT, None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)


def answer_of(reply: Any) -> Answer:
    """The outcome of a ``http.Reply``: its status, or the network failure it carries."""
    if reply.status is None:
        return outcome_of_exception(reply.error or RuntimeError("no answer"))
    return outcome_of(reply.status, reply.body, reply.headers)


def result_of(op_id: int, answer: Answer, **extra: Any) -> OpResult:
    return OpResult(op_id, answer.outcome, detail=answer.detail, retry_after=answer.retry_after,
                    status_code=answer.status, **extra)
