"""RecordingTransport and DryRunTransport over httpx.MockTransport (no SDK involved)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from provisioner.targets.transport import (
    TARGET_CALLS,
    DryRunBlocked,
    DryRunTransport,
    RecordingTransport,
)


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200 if request.method == "GET" else 204)


def batch(*methods: str) -> bytes:
    return json.dumps(
        {"requests": [{"id": str(i), "method": m, "url": "/users"} for i, m in enumerate(methods)]}
    ).encode()


async def test_dry_run_transport_allows_reads_and_get_only_batches() -> None:
    async with httpx.AsyncClient(transport=DryRunTransport(httpx.MockTransport(echo))) as http:
        assert (await http.get("http://127.0.0.1/v1.0/users")).status_code == 200
        assert (await http.head("http://127.0.0.1/v1.0/users")).status_code == 204
        response = await http.post("http://127.0.0.1/v1.0/$batch", content=batch("GET", "GET"))
        assert response.status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1.0/users", b"{}"),
        ("PATCH", "/v1.0/users/u1", b"{}"),
        ("DELETE", "/v1.0/groups/g/members/u/$ref", None),
        ("POST", "/v1.0/$batch", batch("GET", "PATCH")),
        ("POST", "/v1.0/$batch", b"not json"),
    ],
)
async def test_dry_run_transport_blocks_writes(method: str, path: str, body: bytes | None) -> None:
    async with httpx.AsyncClient(transport=DryRunTransport(httpx.MockTransport(echo))) as http:
        with pytest.raises(DryRunBlocked) as info:
            await http.request(method, f"http://127.0.0.1{path}", content=body)
    assert info.value.outcome == "stop"


async def test_recording_transport_counts_and_logs_one_record_per_call(caplog) -> None:
    recorder = RecordingTransport(httpx.MockTransport(echo), "entra-test")
    before = TARGET_CALLS.labels("entra-test", "GET", "200")._value.get()
    caplog.set_level(logging.INFO, logger="provisioner.calls")
    async with httpx.AsyncClient(transport=recorder) as http:
        await http.get(
            "http://127.0.0.1/v1.0/users?$filter=employeeId eq 'E42'",
            headers={"Authorization": "Bearer secret-token"},
        )
        await http.patch("http://127.0.0.1/v1.0/users/u1", json={"accountEnabled": False})
    assert recorder.calls == 2
    assert recorder.calls_by_method == {"GET": 1, "PATCH": 1}
    assert TARGET_CALLS.labels("entra-test", "GET", "200")._value.get() == before + 1
    records = [r for r in caplog.records if r.name == "provisioner.calls"]
    assert len(records) == 2
    first = records[0]
    assert (first.target, first.method, first.path, first.status) == ("entra-test", "GET", "/v1.0/users", "200")
    assert isinstance(first.ms, float)
    text = caplog.text + " ".join(str(r.__dict__) for r in records)
    assert "secret-token" not in text and "Authorization" not in text
    assert "E42" not in text and "accountEnabled" not in text  # no query strings, no bodies


async def test_recording_transport_marks_errors_and_dry_run_blocks(caplog) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    caplog.set_level(logging.INFO, logger="provisioner.calls")
    recorder = RecordingTransport(httpx.MockTransport(fail), "t")
    async with httpx.AsyncClient(transport=recorder) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1/x")
    guarded = RecordingTransport(DryRunTransport(httpx.MockTransport(echo)), "t")
    async with httpx.AsyncClient(transport=guarded) as http:
        with pytest.raises(DryRunBlocked):
            await http.delete("http://127.0.0.1/x")
    assert recorder.calls == 1 and guarded.calls == 0 and guarded.blocked == 1
    assert [r.status for r in caplog.records if r.name == "provisioner.calls"] == ["error", "blocked"]
