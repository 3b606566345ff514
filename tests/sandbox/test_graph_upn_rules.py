"""The sandbox refuses the userPrincipalName and mailNickname values Entra ID refuses, as Graph
does (400 Request_BadRequest with Graph's error body), through msgraph-sdk, plain HTTP and $batch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User

from provisioner.sandbox.graph.app import GraphSandbox
from tests.sandbox.test_graph_users import new_user

INVALID_MESSAGE = "Property userPrincipalName is invalid."
DOMAIN_MESSAGE = ("The domain portion of the userPrincipalName property is invalid. "
                  "You must use one of the verified domain names in your organization.")

# (userPrincipalName, the message Graph answers with)
INVALID_UPNS = [
    (".ada@contoso.com", INVALID_MESSAGE),  # leading dot
    ("ada.@contoso.com", INVALID_MESSAGE),  # a dot right before '@' (a trailing dot)
    ("ada..lovelace@contoso.com", INVALID_MESSAGE),  # doubled dot
    ("x" * 65 + "@contoso.com", INVALID_MESSAGE),  # local part of 65
    ("ada&bob@contoso.com", INVALID_MESSAGE),  # '&'
    ("zoé@contoso.com", INVALID_MESSAGE),  # an accent
    ("ada lovelace@contoso.com", INVALID_MESSAGE),  # a space
    ("ada@bob@contoso.com", INVALID_MESSAGE),  # two '@'
    ("ada.contoso.com", INVALID_MESSAGE),  # no '@'
    ("@contoso.com", INVALID_MESSAGE),  # empty local part
    ("ada@", INVALID_MESSAGE),  # empty domain
    ("ada@" + "d" * 45 + ".com", INVALID_MESSAGE),  # domain of 49
    ("ada@-contoso.com", INVALID_MESSAGE),  # not a DNS name
    ("ada@fabrikam.com", DOMAIN_MESSAGE),  # not a verified domain of the tenant
]
VALID_UPNS = [
    "x" * 64 + "@contoso.com",  # local part of 64
    "o'brien@contoso.com",
    "a!b#c^d~e_f-g.h@contoso.com",  # every allowed punctuation mark
    "ADA.Lovelace@CONTOSO.com",  # domains compare case-insensitively
]


def _assert_graph_400(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert error["message"] == message
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def _body(upn: str, nickname: str | None = None) -> dict[str, Any]:
    return {"accountEnabled": True, "displayName": "Someone", "mailNickname": nickname or "someone",
            "userPrincipalName": upn, "passwordProfile": {"password": "Pa55-word!"}}


@pytest.mark.parametrize(("upn", "message"), INVALID_UPNS)
async def test_post_user_refuses_an_invalid_upn_through_the_sdk(sdk: GraphServiceClient, sandbox: GraphSandbox,
                                                                upn: str, message: str) -> None:
    user = new_user(upn)
    user.display_name, user.mail_nickname = "Someone", "someone"  # only the UPN is wrong
    with pytest.raises(ODataError) as caught:
        await sdk.users.post(user)
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert (caught.value.error.code, caught.value.error.message) == ("Request_BadRequest", message)
    assert sandbox.users() == []  # nothing created


@pytest.mark.parametrize(("upn", "message"), INVALID_UPNS)
async def test_post_and_patch_refuse_an_invalid_upn_over_http(raw_http: httpx.AsyncClient, sandbox: GraphSandbox,
                                                             upn: str, message: str) -> None:
    _assert_graph_400(await raw_http.post("/users", json=_body(upn)), message)
    user_id = sandbox.seed_user("ada@contoso.com")
    _assert_graph_400(await raw_http.patch(f"/users/{user_id}", json={"userPrincipalName": upn}), message)
    assert sandbox.user(user_id)["userPrincipalName"] == "ada@contoso.com"  # unchanged


@pytest.mark.parametrize("upn", VALID_UPNS)
async def test_valid_upns_are_accepted(sdk: GraphServiceClient, sandbox: GraphSandbox, upn: str) -> None:
    created = await sdk.users.post(new_user(upn))
    assert sandbox.user(created.id)["userPrincipalName"] == upn


@pytest.mark.parametrize("nickname", ["x" * 65, "zoé", "a b", ".ada", "ada.", "a..b", "a&b"])
async def test_an_invalid_mail_nickname_is_refused(raw_http: httpx.AsyncClient, sandbox: GraphSandbox,
                                                   nickname: str) -> None:
    _assert_graph_400(await raw_http.post("/users", json=_body("ada@contoso.com", nickname)),
                      "Property mailNickname is invalid.")
    user_id = sandbox.seed_user("bob@contoso.com")
    _assert_graph_400(await raw_http.patch(f"/users/{user_id}", json={"mailNickname": nickname}),
                      "Property mailNickname is invalid.")


async def test_a_duplicate_upn_is_refused_with_entras_wording(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    sandbox.seed_user("ada@contoso.com")
    with pytest.raises(ODataError) as caught:
        await sdk.users.post(new_user("ADA@contoso.com"))
    assert caught.value.response_status_code == 400
    assert caught.value.error.message == (
        "Another object with the same value for property userPrincipalName already exists.")


async def test_batch_items_are_checked_one_by_one(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    requests = [{"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
                 "body": _body("ada.@contoso.com")},
                {"id": "2", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
                 "body": _body("ada@contoso.com", "ada")}]
    response = await raw_http.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    answers = {item["id"]: item for item in response.json()["responses"]}
    assert answers["1"]["status"] == 400
    assert answers["1"]["body"]["error"]["message"] == INVALID_MESSAGE
    assert answers["2"]["status"] == 201
    assert [u["userPrincipalName"] for u in sandbox.users()] == ["ada@contoso.com"]


async def test_verified_domains_are_the_tenants(sdk_for) -> None:
    sandbox = GraphSandbox(verified_domains=["fabrikam.com"])
    sdk = await sdk_for(sandbox)
    with pytest.raises(ODataError) as caught:
        await sdk.users.post(new_user("ada@example.com"))
    assert caught.value.error.message == DOMAIN_MESSAGE
    await sdk.users.post(new_user("ada@fabrikam.com"))
    sandbox.verify_domain("example.com")
    await sdk.users.post(new_user("bob@example.com"))
    assert {u["userPrincipalName"] for u in sandbox.users()} == {"ada@fabrikam.com", "bob@example.com"}


async def test_patching_a_user_to_another_valid_upn_renames_it(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("zoe.bronte@contoso.com")
    await sdk.users.by_user_id(user_id).patch(User(user_principal_name="zoe.nicholls@contoso.com",
                                                   mail_nickname="zoe.nicholls"))
    stored = sandbox.user(user_id)
    assert (stored["userPrincipalName"], stored["mailNickname"]) == ("zoe.nicholls@contoso.com", "zoe.nicholls")
