"""Packing operations into $batch sub-requests (pure: no HTTP)."""

from __future__ import annotations

import json

from provisioner.targets.contract import AccountSpec, OpKind, Outcome, TargetOp
from provisioner.targets.entra import batching

BASE = "https://graph.microsoft.com/v1.0"


def obj_url(object_id: str) -> str:
    return f"{BASE}/directoryObjects/{object_id}"


def spec(**over) -> AccountSpec:
    values = dict(
        employee_id="E1",
        login="ada.lovelace@example.test",
        mail_nickname="ada.lovelace",
        display_name="Ada Lovelace",
        given_name="Ada",
        family_name="Lovelace",
        email="ada.lovelace@example.test",
        department="R&D",
        job_title="Engineer",
    )
    values.update(over)
    return AccountSpec(**values)


def adds(group: str, n: int, start: int = 0) -> list[TargetOp]:
    return [
        TargetOp(start + i, OpKind.ADD_MEMBER, account_id=f"u{i}", group_id=group) for i in range(n)
    ]


def test_45_adds_to_one_group_pack_as_3_bind_patches_in_one_batch() -> None:
    plan = batching.plan_writes(adds("g1", 45), directory_object_url=obj_url)
    assert [s.method for s in plan.subs] == ["PATCH"] * 3
    assert [len(s.body["members@odata.bind"]) for s in plan.subs] == [20, 20, 5]
    assert all(s.url == "/groups/g1" and s.purpose == batching.BIND for s in plan.subs)
    assert plan.subs[0].body["members@odata.bind"][0] == f"{BASE}/directoryObjects/u0"
    assert sorted(i for s in plan.subs for i in s.op_ids) == list(range(45))
    assert batching.min_calls(len(plan.subs)) == 1


def test_single_add_goes_as_members_ref() -> None:
    plan = batching.plan_writes(adds("g1", 1), directory_object_url=obj_url)
    (sub,) = plan.subs
    assert (sub.method, sub.url, sub.purpose) == ("POST", "/groups/g1/members/$ref", batching.REF)
    assert sub.body == {"@odata.id": f"{BASE}/directoryObjects/u0"}


def test_21_adds_split_into_bind_of_20_and_ref_of_1() -> None:
    plan = batching.plan_writes(adds("g1", 21), directory_object_url=obj_url)
    assert [s.purpose for s in plan.subs] == [batching.BIND, batching.REF]


def test_duplicate_add_is_sent_once_and_answers_both_ops() -> None:
    ops = [
        TargetOp(1, OpKind.ADD_MEMBER, account_id="u1", group_id="g"),
        TargetOp(2, OpKind.ADD_MEMBER, account_id="u1", group_id="g"),
        TargetOp(3, OpKind.ADD_MEMBER, account_id="u2", group_id="g"),
    ]
    (sub,) = batching.plan_writes(ops, directory_object_url=obj_url).subs
    assert len(sub.body["members@odata.bind"]) == 2
    assert sub.members == {"u1": (1, 2), "u2": (3,)}


def test_leaver_pack_is_12_sub_requests_with_ref_removals() -> None:
    ops = [
        TargetOp(1, OpKind.DISABLE_ACCOUNT, account_id="u1"),
        TargetOp(2, OpKind.REVOKE_SESSIONS, account_id="u1"),
    ] + [TargetOp(10 + i, OpKind.REMOVE_MEMBER, account_id="u1", group_id=f"g{i}") for i in range(10)]
    plan = batching.plan_writes(ops, directory_object_url=obj_url)
    assert len(plan.subs) == 12 and batching.min_calls(len(plan.subs)) == 1
    assert plan.subs[0].to_json() == {
        "id": plan.subs[0].id,
        "method": "PATCH",
        "url": "/users/u1",
        "body": {"accountEnabled": False},
        "headers": {"Content-Type": "application/json"},
    }
    assert plan.subs[1].to_json() == {
        "id": plan.subs[1].id,
        "method": "POST",
        "url": "/users/u1/revokeSignInSessions",
    }
    removes = plan.subs[2:]
    assert all(s.method == "DELETE" and s.url.endswith("/members/u1/$ref") for s in removes)
    assert len({s.id for s in plan.subs}) == 12


def test_create_body_has_required_fields_and_random_password() -> None:
    plan = batching.plan_writes(
        [TargetOp(1, OpKind.CREATE_ACCOUNT, account=spec(enabled=False))],
        directory_object_url=obj_url,
        usage_location="DE",
        password_factory=lambda: "Secret-1-Password",
    )
    (sub,) = plan.subs
    assert (sub.method, sub.url, sub.purpose) == ("POST", "/users", batching.CREATE)
    body = sub.body
    assert body["accountEnabled"] is False
    assert body["userPrincipalName"] == "ada.lovelace@example.test"
    assert body["mailNickname"] == "ada.lovelace"
    assert body["mail"] == "ada.lovelace@example.test"
    assert body["givenName"] == "Ada" and body["surname"] == "Lovelace"
    assert body["employeeId"] == "E1" and body["usageLocation"] == "DE"
    assert body["passwordProfile"] == {"forceChangePasswordNextSignIn": True, "password": "Secret-1-Password"}
    assert "officeLocation" not in body  # None values are left out


def test_update_body_never_changes_login_or_enabled() -> None:
    plan = batching.plan_writes(
        [TargetOp(1, OpKind.UPDATE_ACCOUNT, account_id="u1", account=spec(job_title="Lead"))],
        directory_object_url=obj_url,
    )
    body = plan.subs[0].body
    assert body["jobTitle"] == "Lead"
    assert not {"userPrincipalName", "accountEnabled", "passwordProfile"} & set(body)


def test_random_password_is_strong_and_different_each_time() -> None:
    a, b = batching.random_password(), batching.random_password()
    assert a != b and len(a) >= 16
    assert any(c.islower() for c in a) and any(c.isupper() for c in a)
    assert any(c.isdigit() for c in a) and any(not c.isalnum() for c in a)


def test_ops_missing_ids_are_refused_without_sending() -> None:
    plan = batching.plan_writes(
        [
            TargetOp(1, OpKind.DISABLE_ACCOUNT),
            TargetOp(2, OpKind.ADD_MEMBER, account_id="u1"),
            TargetOp(3, OpKind.CREATE_ACCOUNT),
            TargetOp(4, OpKind.VERIFY_REVOKED, account_id="u1"),
        ],
        directory_object_url=obj_url,
    )
    assert plan.subs == []
    assert sorted(r.op_id for r in plan.results) == [1, 2, 3, 4]
    assert {r.outcome for r in plan.results} == {Outcome.BAD_REQUEST}


def test_ids_and_filters_are_escaped() -> None:
    assert batching.odata_string("O'Brien") == "'O''Brien'"
    assert batching.path_segment("a/b#c") == "a%2Fb%23c"
    query = batching.query_string({"$filter": "displayName eq 'R&D #1'", "$select": "id,displayName"})
    assert query == "$filter=displayName%20eq%20'R%26D%20%231'&$select=id,displayName"


def test_batch_body_and_response_round_trip() -> None:
    plan = batching.plan_writes(adds("g", 3), directory_object_url=obj_url)
    body = json.loads(batching.batch_body(plan.subs))
    assert [r["id"] for r in body["requests"]] == [s.id for s in plan.subs]
    raw = json.dumps({"responses": [{"id": "1", "status": 204, "headers": {}}]}).encode()
    assert batching.parse_batch_response(raw)["1"]["status"] == 204


def test_next_link_becomes_relative_for_batch() -> None:
    link = f"{BASE}/users/u1/memberOf/microsoft.graph.group?$select=id&$skiptoken=abc"
    assert batching.relative_url(link, BASE) == "/users/u1/memberOf/microsoft.graph.group?$select=id&$skiptoken=abc"
    assert batching.relative_url("http://other/v1.0/groups?$skiptoken=x", BASE) == "/groups?$skiptoken=x"
