"""Graph answers -> outcomes: the one mapping (provisioner.targets.entra.errors)."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provisioner.targets.contract import Outcome
from provisioner.targets.entra import errors
from provisioner.targets.transport import DryRunBlocked


def odata_error(status: int, code: str, message: str, headers: dict | None = None) -> ODataError:
    exc = ODataError(error=MainError(code=code, message=message))
    exc.response_status_code = status
    exc.response_headers = httpx.Headers(headers or {})
    return exc


def batch_item(status: int, code: str = "", message: str = "", headers: dict | None = None) -> dict:
    item: dict = {"id": "1", "status": status, "headers": headers or {}}
    if code:
        item["body"] = {"error": {"code": code, "message": message}}
    return item


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome"),
    [
        (200, "", "", Outcome.DONE),
        (204, "", "", Outcome.DONE),
        (429, "TooManyRequests", "Too many requests", Outcome.TRANSIENT),
        (503, "serviceNotAvailable", "down", Outcome.TRANSIENT),
        (504, "UnknownError", "gateway", Outcome.TRANSIENT),
        (500, "InternalServerError", "boom", Outcome.TRANSIENT),
        (401, "InvalidAuthenticationToken", "expired", Outcome.STOP),
        (403, "Authorization_RequestDenied", "Insufficient privileges", Outcome.STOP),
        (404, "Request_ResourceNotFound", "Resource 'x' does not exist", Outcome.NOT_FOUND),
        (
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
            Outcome.EXISTS,
        ),
        (
            400,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
            Outcome.EXISTS,
        ),
        (400, "Request_BadRequest", "Invalid value specified for property 'mailNickname'", Outcome.BAD_REQUEST),
        (400, "Request_ResourceNotFound", "Resource 'u' does not exist", Outcome.NOT_FOUND),
    ],
)
def test_status_code_and_message_map_to_outcome(status, code, message, outcome) -> None:
    assert errors.classify(status, code, message).outcome == outcome
    # A 403 inside a batch concerns one object (a protected account), not the credentials.
    per_item = Outcome.BAD_REQUEST if status == 403 else outcome
    assert errors.from_batch_item(batch_item(status, code, message)).outcome == per_item
    if status >= 400:
        assert errors.from_api_error(odata_error(status, code, message)).outcome == outcome


def test_bad_request_detail_carries_graph_code_and_message() -> None:
    mapped = errors.from_batch_item(batch_item(400, "Request_BadRequest", "Invalid value for 'x'"))
    assert mapped.outcome == Outcome.BAD_REQUEST
    assert "Request_BadRequest" in mapped.detail and "Invalid value for 'x'" in mapped.detail
    assert mapped.status_code == 400


def test_retry_after_read_from_batch_item_headers_any_case() -> None:
    mapped = errors.from_batch_item(batch_item(429, "TooManyRequests", "slow", {"retry-after": "7"}))
    assert (mapped.outcome, mapped.retry_after) == (Outcome.TRANSIENT, 7.0)


def test_retry_after_read_from_odata_error_headers() -> None:
    mapped = errors.from_api_error(odata_error(503, "x", "y", {"Retry-After": "3"}))
    assert (mapped.outcome, mapped.retry_after) == (Outcome.TRANSIENT, 3.0)


def test_retry_after_http_date_is_seconds_from_now() -> None:
    now = 1_700_000_000.0
    value = email.utils.formatdate(now + 30, usegmt=True)
    assert errors.parse_retry_after(value, now=now) == pytest.approx(30, abs=1)
    assert errors.parse_retry_after("garbage") is None
    assert errors.parse_retry_after(None) is None


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("bad"),
    ],
)
def test_httpx_transport_failures_are_transient(exc: Exception) -> None:
    assert errors.from_exception(exc).outcome == Outcome.TRANSIENT


def test_token_refused_is_stop_and_dry_run_block_keeps_its_outcome() -> None:
    assert errors.from_exception(ClientAuthenticationError("bad secret")).outcome == Outcome.STOP
    assert errors.from_exception(DryRunBlocked("POST", "/v1.0/users")).outcome == Outcome.STOP


def test_mapped_to_result_and_error() -> None:
    mapped = errors.classify(429, "TooManyRequests", "slow", 2.0)
    result = mapped.result(9)
    assert (result.op_id, result.outcome, result.retry_after, result.status_code) == (
        9,
        Outcome.TRANSIENT,
        2.0,
        429,
    )
    err = mapped.error()
    assert err.outcome == Outcome.TRANSIENT and err.retry_after == 2.0
