"""The Entra connector through the real msgraph-sdk against the in-process Graph sandbox."""

from __future__ import annotations

import logging

import httpx
import pytest

from provisioner.targets.contract import (
    AccountSpec,
    OpKind,
    Outcome,
    TargetError,
    TargetOp,
)
from provisioner.targets.entra.connector import EntraConnector
from provisioner.targets.entra.credentials import StaticTokenCredential
from provisioner.targets.transport import DryRunBlocked
from tests.targets.entra_sandbox_helpers import (
    TEST_TOKEN,
    FailNextBatchTransport,
    connector_for,
    entra_config,
)


def person(n: int = 1, **over) -> AccountSpec:
    values = dict(
        employee_id=f"E9{n:03d}",
        login=f"new.person{n}@example.test",
        mail_nickname=f"new.person{n}",
        display_name=f"New Person {n}",
        given_name="New",
        family_name=f"Person{n}",
        email=f"new.person{n}@example.test",
        department="Engineering",
        job_title="Engineer",
        office_location="Berlin",
        employee_type="Employee",
        enabled=True,
    )
    values.update(over)
    return AccountSpec(**values)


def by_id(results):
    return {r.op_id: r for r in results}


def calls(sandbox) -> int:
    return sandbox.stats.http_calls


# ---- accounts ------------------------------------------------------------------------------


async def test_create_account_sets_attributes_and_returns_id_and_login(entra_over_sandbox, graph_sandbox):
    (result,) = await entra_over_sandbox.apply([TargetOp(1, OpKind.CREATE_ACCOUNT, account=person())])
    assert result.outcome == Outcome.DONE, result.detail
    assert result.remote_id and result.login == "new.person1@example.test"
    user = graph_sandbox.user(result.remote_id)
    assert user["userPrincipalName"] == "new.person1@example.test"
    assert user["accountEnabled"] is True
    assert user["employeeId"] == "E9001"
    assert user["usageLocation"] == "DE"
    assert user["jobTitle"] == "Engineer"


async def test_create_with_taken_upn_is_exists(entra_over_sandbox, graph_sandbox):
    graph_sandbox.seed_user("new.person1@example.test", display_name="Someone", employee_id="X1")
    (result,) = await entra_over_sandbox.apply([TargetOp(1, OpKind.CREATE_ACCOUNT, account=person())])
    assert result.outcome == Outcome.EXISTS
    assert "userPrincipalName" in result.detail
    assert result.remote_id is None


async def test_find_account_by_employee_id_with_quotes_escaped(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("o'brien@example.test", display_name="Pat O'Brien", employee_id="E'7")
    found = await entra_over_sandbox.find_account(person(employee_id="E'7", login="other@example.test"))
    assert found == (uid, "o'brien@example.test")
    assert await entra_over_sandbox.find_account(person(employee_id="none", login="none@example.test")) is None


async def test_find_account_never_links_an_account_that_only_holds_the_login(entra_over_sandbox, graph_sandbox):
    graph_sandbox.seed_user("new.person1@example.test", display_name="Someone Else")
    assert await entra_over_sandbox.find_account(person()) is None


async def test_find_account_by_upn_when_no_employee_id_is_known(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("o'brien@example.test", display_name="Pat O'Brien")
    assert await entra_over_sandbox.find_account(person(employee_id="", login="o'brien@example.test")) == (
        uid,
        "o'brien@example.test",
    )


async def test_disable_then_enable_account(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    (r,) = await entra_over_sandbox.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid)])
    assert r.outcome == Outcome.DONE and graph_sandbox.user(uid)["accountEnabled"] is False
    (r,) = await entra_over_sandbox.apply([TargetOp(2, OpKind.ENABLE_ACCOUNT, account_id=uid)])
    assert r.outcome == Outcome.DONE and graph_sandbox.user(uid)["accountEnabled"] is True


async def test_revoke_sessions(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    assert graph_sandbox.sessions_revoked_at(uid) is None
    (r,) = await entra_over_sandbox.apply([TargetOp(1, OpKind.REVOKE_SESSIONS, account_id=uid)])
    assert r.outcome == Outcome.DONE, r.detail
    assert graph_sandbox.sessions_revoked_at(uid) is not None


async def test_update_and_delete_account(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("new.person1@example.test", display_name="Old", employee_id="E9001")
    (r,) = await entra_over_sandbox.apply(
        [TargetOp(1, OpKind.UPDATE_ACCOUNT, account_id=uid, account=person(job_title="Lead"))]
    )
    assert r.outcome == Outcome.DONE, r.detail
    assert graph_sandbox.user(uid)["jobTitle"] == "Lead"
    assert graph_sandbox.user(uid)["displayName"] == "New Person 1"
    (r,) = await entra_over_sandbox.apply([TargetOp(2, OpKind.DELETE_ACCOUNT, account_id=uid)])
    assert r.outcome == Outcome.DONE
    (r,) = await entra_over_sandbox.apply([TargetOp(3, OpKind.DISABLE_ACCOUNT, account_id=uid)])
    assert r.outcome == Outcome.NOT_FOUND


# ---- memberships -----------------------------------------------------------------------------


async def test_add_45_members_is_3_bind_patches_in_1_http_call(
    entra_over_sandbox, graph_sandbox, sandbox_group_and_45_users
):
    group, users = sandbox_group_and_45_users
    ops = [TargetOp(i, OpKind.ADD_MEMBER, account_id=u, group_id=group) for i, u in enumerate(users)]
    http_before, subs_before = graph_sandbox.stats.http_calls, graph_sandbox.stats.sub_requests
    results = await entra_over_sandbox.apply(ops)
    assert {r.outcome for r in results} == {Outcome.DONE}
    assert len(results) == 45
    assert graph_sandbox.stats.http_calls - http_before == 1
    assert graph_sandbox.stats.sub_requests - subs_before == 3
    assert graph_sandbox.group_member_ids(group) == set(users)
    assert entra_over_sandbox.recorder.calls == 1


async def test_add_where_some_are_already_members_gives_each_op_its_own_outcome(
    entra_over_sandbox, graph_sandbox, sandbox_group_and_45_users
):
    group, users = sandbox_group_and_45_users
    users = users[:25]
    already = set(users[3:8])
    await entra_over_sandbox.apply(
        [TargetOp(100 + i, OpKind.ADD_MEMBER, account_id=u, group_id=group) for i, u in enumerate(sorted(already))]
    )
    assert graph_sandbox.group_member_ids(group) == already
    http_before = calls(graph_sandbox)
    ops = [TargetOp(i, OpKind.ADD_MEMBER, account_id=u, group_id=group) for i, u in enumerate(users)]
    results = by_id(await entra_over_sandbox.apply(ops))
    assert len(results) == 25
    for op in ops:
        expected = Outcome.EXISTS if op.account_id in already else Outcome.DONE
        assert results[op.op_id].outcome == expected, (op, results[op.op_id])
    assert graph_sandbox.group_member_ids(group) == set(users)
    # round 1: one $batch (bind of 20 + bind of 5), round 2: one $batch of single $ref posts
    assert calls(graph_sandbox) - http_before == 2


async def test_remove_absent_member_is_not_found(entra_over_sandbox, graph_sandbox):
    group = graph_sandbox.seed_group("Sales")
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    (r,) = await entra_over_sandbox.apply([TargetOp(1, OpKind.REMOVE_MEMBER, account_id=uid, group_id=group)])
    assert r.outcome == Outcome.NOT_FOUND
    assert graph_sandbox.user(uid) is not None  # /$ref: the membership, never the user


async def test_leaver_pack_of_12_writes_is_exactly_1_http_call(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("leaver@example.test", display_name="Leaver", employee_id="E1")
    groups = [graph_sandbox.seed_group(f"G{i}") for i in range(10)]
    await entra_over_sandbox.apply(
        [TargetOp(100 + i, OpKind.ADD_MEMBER, account_id=uid, group_id=g) for i, g in enumerate(groups)]
    )
    ops = [
        TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid),
        TargetOp(2, OpKind.REVOKE_SESSIONS, account_id=uid),
    ] + [TargetOp(10 + i, OpKind.REMOVE_MEMBER, account_id=uid, group_id=g) for i, g in enumerate(groups)]
    http_before, subs_before = calls(graph_sandbox), graph_sandbox.stats.sub_requests
    results = await entra_over_sandbox.apply(ops)
    assert {r.outcome for r in results} == {Outcome.DONE}, [r for r in results if r.outcome != Outcome.DONE]
    assert calls(graph_sandbox) - http_before == 1
    assert graph_sandbox.stats.sub_requests - subs_before == 12
    assert graph_sandbox.user(uid)["accountEnabled"] is False
    assert all(uid not in graph_sandbox.group_member_ids(g) for g in groups)


# ---- failures ----------------------------------------------------------------------------------


async def test_per_item_429_inside_batch_is_transient_with_retry_after(entra_over_sandbox, graph_sandbox):
    a = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    b = graph_sandbox.seed_user("b@example.test", display_name="B", employee_id="E2")
    graph_sandbox.fail_next("PATCH", rf"/users/{a}$", status=429, code="TooManyRequests",
                            message="Too many requests", retry_after=2)
    results = by_id(
        await entra_over_sandbox.apply(
            [TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=a), TargetOp(2, OpKind.DISABLE_ACCOUNT, account_id=b)]
        )
    )
    assert results[1].outcome == Outcome.TRANSIENT
    assert results[1].retry_after == 2 and results[1].status_code == 429
    assert results[2].outcome == Outcome.DONE
    assert graph_sandbox.user(a)["accountEnabled"] is True  # not retried by the connector
    assert calls(graph_sandbox) == 1


async def test_whole_batch_401_raises_stop():
    from provisioner.sandbox.graph.app import GraphSandbox

    sandbox = GraphSandbox(token="the-right-token")  # the connector presents another one
    uid = sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    connector = connector_for(sandbox)
    try:
        with pytest.raises(TargetError) as info:
            await connector.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid)])
        assert info.value.outcome == Outcome.STOP and info.value.status_code == 401
        assert sandbox.user(uid)["accountEnabled"] is True
    finally:
        await connector.aclose()


async def test_sub_request_403_refuses_only_that_op(entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    graph_sandbox.fail_next("POST", r"/revokeSignInSessions", status=403, code="Authorization_RequestDenied",
                            message="Insufficient privileges to complete the operation.")
    results = by_id(
        await entra_over_sandbox.apply(
            [TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid), TargetOp(2, OpKind.REVOKE_SESSIONS, account_id=uid)]
        )
    )
    assert results[1].outcome == Outcome.DONE
    assert results[2].outcome == Outcome.BAD_REQUEST and "Authorization_RequestDenied" in results[2].detail


async def test_5xx_is_transient_per_item_and_for_the_whole_batch(graph_sandbox):
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    faulty = FailNextBatchTransport(httpx.ASGITransport(app=graph_sandbox.app))
    connector = EntraConnector.create(entra_config(), transport=faulty, credential=StaticTokenCredential(TEST_TOKEN))
    try:
        graph_sandbox.fail_next("PATCH", rf"/users/{uid}$", status=503, code="serviceNotAvailable", message="busy")
        (r,) = await connector.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid)])
        assert (r.outcome, r.status_code) == (Outcome.TRANSIENT, 503)
        faulty.fail_next_batch(503, "serviceNotAvailable", "busy", retry_after=4)
        with pytest.raises(TargetError) as info:
            await connector.apply([TargetOp(2, OpKind.DISABLE_ACCOUNT, account_id=uid)])
        assert info.value.outcome == Outcome.TRANSIENT and info.value.retry_after == 4
        faulty.fail_next_batch(504, "UnknownError", "gateway timeout")
        with pytest.raises(TargetError) as info:
            await connector.apply([TargetOp(3, OpKind.DISABLE_ACCOUNT, account_id=uid)])
        assert info.value.outcome == Outcome.TRANSIENT
        assert connector.recorder.calls == 3  # the SDK's retry handler retried nothing
        assert graph_sandbox.user(uid)["accountEnabled"] is True
    finally:
        await connector.aclose()


async def test_dropped_connection_is_transient():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    connector = EntraConnector.create(
        entra_config(), transport=httpx.MockTransport(refuse), credential=StaticTokenCredential(TEST_TOKEN)
    )
    try:
        with pytest.raises(TargetError) as info:
            await connector.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id="u1")])
        assert info.value.outcome == Outcome.TRANSIENT
        with pytest.raises(TargetError) as info:
            await connector.find_account(person())
        assert info.value.outcome == Outcome.TRANSIENT
        health = await connector.check()
        assert not health.reachable
    finally:
        await connector.aclose()


# ---- dry run, recording ----------------------------------------------------------------------


async def test_dry_run_blocks_writes_and_allows_reads(dry_run_entra_over_sandbox, graph_sandbox):
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    group = graph_sandbox.seed_group("Sales")
    writes_before = graph_sandbox.stats.writes
    with pytest.raises(DryRunBlocked):
        await dry_run_entra_over_sandbox.apply(
            [TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid), TargetOp(2, OpKind.CREATE_ACCOUNT, account=person())]
        )
    assert graph_sandbox.stats.writes == writes_before
    assert graph_sandbox.user(uid)["accountEnabled"] is True
    state = await dry_run_entra_over_sandbox.read_account(uid, [group])
    assert state.exists and state.enabled is True
    assert await dry_run_entra_over_sandbox.find_account(person(employee_id="E1")) == (uid, "a@example.test")
    assert await dry_run_entra_over_sandbox.resolve_groups(["Sales"]) == {"Sales": group}
    assert (await dry_run_entra_over_sandbox.check()).credentials_ok
    assert dry_run_entra_over_sandbox.recorder.blocked == 1


async def test_recording_transport_counts_sdk_calls_and_never_logs_the_token(
    entra_over_sandbox, graph_sandbox, caplog
):
    caplog.set_level(logging.DEBUG)
    uid = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    assert (await entra_over_sandbox.check()).reachable  # an SDK request builder's GET
    await entra_over_sandbox.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id=uid)])
    recorder = entra_over_sandbox.recorder
    assert recorder.calls == graph_sandbox.stats.http_calls == 2
    assert recorder.calls_by_method == {"GET": 1, "POST": 1}
    records = [r for r in caplog.records if r.name == "provisioner.calls"]
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/v1.0/groups", "200"),
        ("POST", "/v1.0/$batch", "200"),
    ]
    assert all(r.target == "entra-test" and r.ms >= 0 for r in records)
    for r in records:
        assert TEST_TOKEN not in str(r.__dict__) and "Authorization" not in str(r.__dict__)
    assert TEST_TOKEN not in caplog.text


# ---- read-back -------------------------------------------------------------------------------


async def test_read_accounts_reads_state_and_asked_memberships_in_one_call(entra_over_sandbox, graph_sandbox):
    g1, g2, other = (graph_sandbox.seed_group(n) for n in ("G1", "G2", "Other"))
    a = graph_sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
    b = graph_sandbox.seed_user("b@example.test", display_name="B", employee_id="E2")
    await entra_over_sandbox.apply(
        [
            TargetOp(1, OpKind.ADD_MEMBER, account_id=a, group_id=g1),
            TargetOp(2, OpKind.ADD_MEMBER, account_id=a, group_id=other),
            TargetOp(3, OpKind.ADD_MEMBER, account_id=b, group_id=g2),
            TargetOp(4, OpKind.DISABLE_ACCOUNT, account_id=b),
        ]
    )
    missing = "00000000-0000-0000-0000-000000000000"
    before = calls(graph_sandbox)
    states = await entra_over_sandbox.read_accounts([a, b, missing], [g1, g2])
    assert calls(graph_sandbox) - before == 1  # 6 GETs in one $batch
    assert states[a].exists and states[a].enabled is True and states[a].group_ids == {g1}
    assert states[b].exists and states[b].enabled is False and states[b].group_ids == {g2}
    assert states[a].raw["userPrincipalName"] == "a@example.test"
    assert not states[missing].exists and states[missing].group_ids == set()


async def test_read_account_follows_member_of_next_links(small_page_sandbox):
    sandbox = small_page_sandbox
    connector = connector_for(sandbox)
    try:
        uid = sandbox.seed_user("a@example.test", display_name="A", employee_id="E1")
        groups = [sandbox.seed_group(f"G{i}") for i in range(5)]
        await connector.apply(
            [TargetOp(i, OpKind.ADD_MEMBER, account_id=uid, group_id=g) for i, g in enumerate(groups)]
        )
        state = await connector.read_account(uid, groups[1:])
        assert state.group_ids == set(groups[1:])
        assert await connector.group_member_ids(groups[0]) == {uid}
    finally:
        await connector.aclose()


async def test_group_member_ids_reads_every_page(small_page_sandbox):
    sandbox = small_page_sandbox
    connector = connector_for(sandbox)
    try:
        group = sandbox.seed_group("Big")
        users = [sandbox.seed_user(f"u{i}@example.test", display_name=f"U{i}", employee_id=f"E{i}") for i in range(7)]
        await connector.apply([TargetOp(i, OpKind.ADD_MEMBER, account_id=u, group_id=group) for i, u in enumerate(users)])
        assert await connector.group_member_ids(group) == set(users)
    finally:
        await connector.aclose()


async def test_resolve_groups_names_in_one_batch_and_guids_as_ids(entra_over_sandbox, graph_sandbox):
    sales = graph_sandbox.seed_group("Sales")
    rnd = graph_sandbox.seed_group("R&D #1")
    guid = "11111111-2222-3333-4444-555555555555"
    before = calls(graph_sandbox)
    resolved = await entra_over_sandbox.resolve_groups(["Sales", "R&D #1", "Nope", guid])
    assert resolved == {"Sales": sales, "R&D #1": rnd, guid: guid}
    assert calls(graph_sandbox) - before == 1


async def test_check_reports_reachable_and_credentials(entra_over_sandbox, graph_sandbox):
    health = await entra_over_sandbox.check()
    assert (health.reachable, health.credentials_ok, health.kind) == (True, True, "entra")
    graph_sandbox.fail_next("GET", r"/groups", status=401, code="InvalidAuthenticationToken", message="bad")
    health = await entra_over_sandbox.check()
    assert (health.reachable, health.credentials_ok) == (True, False)


async def test_sdk_retry_handler_is_off_for_single_calls(entra_over_sandbox, graph_sandbox):
    graph_sandbox.fail_next("GET", r"^/users$", status=429, code="TooManyRequests", message="slow", retry_after=1)
    with pytest.raises(TargetError) as info:
        await entra_over_sandbox.find_account(person())
    assert (info.value.outcome, info.value.retry_after) == (Outcome.TRANSIENT, 1)
    assert graph_sandbox.stats.http_calls == 1


async def test_bind_with_a_missing_member_falls_back_to_single_refs(entra_over_sandbox, graph_sandbox):
    group = graph_sandbox.seed_group("Sales")
    users = [graph_sandbox.seed_user(f"u{i}@example.test", display_name=f"U{i}", employee_id=f"E{i}") for i in range(3)]
    ghost = "00000000-0000-0000-0000-00000000dead"
    ops = [TargetOp(i, OpKind.ADD_MEMBER, account_id=u, group_id=group) for i, u in enumerate([*users, ghost])]
    results = by_id(await entra_over_sandbox.apply(ops))
    assert [results[i].outcome for i in range(3)] == [Outcome.DONE] * 3
    assert results[3].outcome == Outcome.NOT_FOUND, results[3]
    assert graph_sandbox.group_member_ids(group) == set(users)


async def test_throttle_storm_marks_only_the_throttled_items_transient(entra_over_sandbox, graph_sandbox):
    users = [graph_sandbox.seed_user(f"u{i}@example.test", display_name=f"U{i}", employee_id=f"E{i}") for i in range(6)]
    graph_sandbox.throttle_storm(2, retry_after=1)
    results = await entra_over_sandbox.apply(
        [TargetOp(i, OpKind.DISABLE_ACCOUNT, account_id=u) for i, u in enumerate(users)]
    )
    transient = [r for r in results if r.outcome == Outcome.TRANSIENT]
    assert len(transient) == 2 and all(r.retry_after == 1 for r in transient)
    assert sum(r.outcome == Outcome.DONE for r in results) == 4


async def test_check_reports_refused_credentials_without_calling_graph(graph_sandbox):
    from azure.core.exceptions import ClientAuthenticationError

    class RefusingCredential:
        async def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")

        async def close(self) -> None:
            return None

    connector = EntraConnector.create(
        entra_config(), transport=httpx.ASGITransport(app=graph_sandbox.app), credential=RefusingCredential()
    )
    try:
        health = await connector.check()
        assert (health.reachable, health.credentials_ok) == (False, False)
        assert "AADSTS7000215" in health.detail
        with pytest.raises(TargetError) as info:
            await connector.apply([TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id="u1")])
        assert info.value.outcome == Outcome.STOP
        assert graph_sandbox.stats.http_calls == 0
    finally:
        await connector.aclose()
