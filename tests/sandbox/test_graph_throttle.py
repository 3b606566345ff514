"""Throttling: Graph's identity-and-access limits, scaled windows, storms and injected faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User

from provisioner.sandbox.graph.app import GraphSandbox
from provisioner.sandbox.graph.throttle import (
    GraphThrottle,
    SlidingWindow,
    request_cost,
    resource_unit_limit,
)

SdkFactory = Callable[..., Awaitable[GraphServiceClient]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_refuses_until_the_oldest_units_expire() -> None:
    window = SlidingWindow(limit=3, window=10.0)
    for moment in (0.0, 1.0, 2.0):
        assert window.wait(1, moment) == 0.0
        window.add(1, moment)
    assert window.wait(1, 5.0) == pytest.approx(5.0)  # the unit taken at 0.0 frees at 10.0
    assert window.wait(2, 5.0) == pytest.approx(6.0)  # two units: wait for the one taken at 1.0
    assert window.wait(1, 10.0) == 0.0


def test_write_quota_scaled_refuses_with_whole_second_retry_after() -> None:
    fake = FakeClock()
    throttle = GraphThrottle(scale=50, tenant_size=1000, clock=fake)  # 3,000 writes per 3 s
    for _ in range(3000):
        assert throttle.admit(cost=1, write=True) is None
    fake.now += 0.5
    refusal = throttle.admit(cost=1, write=True)
    assert refusal is not None
    assert (refusal.retry_after, refusal.reason) == (3, "WriteLimitExceeded")  # ceil(2.5)
    assert throttle.writes.wait(1, fake.now) == pytest.approx(2.5)  # the refusal took nothing
    fake.now += 2.5
    assert throttle.admit(cost=1, write=True) is None


def test_read_quota_follows_tenant_size_and_request_costs() -> None:
    assert [resource_unit_limit(n) for n in (10, 49, 50, 500, 501)] == [3500, 3500, 5000, 5000, 8000]
    assert request_cost(2, {}) == 2  # GET users
    assert request_cost(2, {"$select": "id"}) == 1
    assert request_cost(3, {"$select": "id", "$top": "999"}) == 2  # GET groups/{id}/members
    assert request_cost(3, {"$select": "id", "$top": "10"}) == 1
    assert request_cost(1, {"$select": "id"}) == 1  # never below 1

    fake = FakeClock()
    throttle = GraphThrottle(tenant_size=10, clock=fake)
    for _ in range(1750):  # 3,500 units / 2 per GET users
        assert throttle.admit(cost=2, write=False) is None
    refusal = throttle.admit(cost=1, write=False)
    assert refusal is not None and refusal.reason == "ResourceUnitLimitExceeded"
    assert refusal.retry_after == 10


async def test_scaled_write_budget_is_enforced_across_batches() -> None:
    sandbox = GraphSandbox(throttle=True, scale=10)  # 3,000 writes per 15 s: no refill during the test
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app),
        base_url="http://127.0.0.1/v1.0",
        headers={"Authorization": "Bearer x"},
    ) as http:
        user_id = sandbox.seed_user("busy@contoso.com")
        item: dict[str, Any] = {
            "method": "PATCH",
            "url": f"/users/{user_id}",
            "headers": {"Content-Type": "application/json"},
            "body": {"jobTitle": "x"},
        }
        for _ in range(150):
            batch = await http.post("/$batch", json={"requests": [{**item, "id": str(i)} for i in range(20)]})
            assert {entry["status"] for entry in batch.json()["responses"]} == {204}

        refused = await http.post("/$batch", json={"requests": [{**item, "id": str(i)} for i in range(20)]})
        assert refused.status_code == 200
        entries = refused.json()["responses"]
        assert {entry["status"] for entry in entries} == {429}
        assert all(1 <= int(entry["headers"]["Retry-After"]) <= 15 for entry in entries)
        assert entries[0]["body"]["error"]["code"] == "TooManyRequests"

        direct = await http.patch(f"/users/{user_id}", json={"jobTitle": "y"})
        assert direct.status_code == 429 and int(direct.headers["Retry-After"]) >= 1

    stats = sandbox.stats
    assert (stats.writes, len(stats.write_times), stats.throttled) == (3000, 3000, 21)
    assert (stats.http_calls, stats.batch_calls, stats.sub_requests) == (152, 151, 3020)
    assert stats.write_times[-1] - stats.write_times[0] < 15


async def test_sdk_without_retries_sees_429_from_a_storm(
    sdk_no_retry: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    sandbox.throttle_storm(1, retry_after=4)
    with pytest.raises(ODataError) as caught:
        await sdk_no_retry.users.by_user_id(user_id).patch(User(job_title="x"))
    assert caught.value.response_status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    assert caught.value.response_headers is not None
    assert caught.value.response_headers.get("retry-after") == "4"
    await sdk_no_retry.users.by_user_id(user_id).patch(User(job_title="y"))  # the storm is over
    assert (sandbox.stats.throttled, sandbox.stats.writes) == (1, 1)


async def test_fail_next_injects_errors_for_matching_requests_only(
    sdk_no_retry: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    sandbox.fail_next(
        "PATCH",
        r"^/users/",
        status=403,
        code="Authorization_RequestDenied",
        message="Insufficient privileges to complete the operation.",
        times=2,
    )
    await sdk_no_retry.users.by_user_id(user_id).get()  # a GET doesn't match
    for _ in range(2):
        with pytest.raises(ODataError) as caught:
            await sdk_no_retry.users.by_user_id(user_id).patch(User(job_title="x"))
        assert caught.value.response_status_code == 403
        assert caught.value.error is not None and caught.value.error.code == "Authorization_RequestDenied"
    await sdk_no_retry.users.by_user_id(user_id).patch(User(job_title="x"))
    stored = sandbox.user(user_id)
    assert stored is not None and stored["jobTitle"] == "x"
    assert (sandbox.stats.writes, sandbox.stats.reads, sandbox.stats.throttled) == (3, 1, 0)


async def test_injected_429_fault_is_free_and_counted_as_throttled(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    sandbox.fail_next("*", user_id, status=429, code="TooManyRequests", message="slow down", retry_after=2)
    response = await raw_http.get(f"/users/{user_id}")
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert (sandbox.stats.throttled, sandbox.stats.reads) == (1, 0)
