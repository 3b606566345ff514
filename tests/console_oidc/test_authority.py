"""The sandbox authority over HTTPS: discovery where msal reads it, the JWKS that verifies its
tokens, and the authorize/token rules (registered redirect URI, PKCE S256 required, one-use codes)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import ssl

import httpx
import jwt
import pytest

from tests.console_oidc.conftest import CLIENT_ID, REDIRECT_URI, SECRET, pick


def test_discovery_is_served_at_both_well_known_paths_and_the_jwks_verifies_issued_tokens(authority, browser, sandbox):
    root = authority.root
    for path in ("/sandbox/v2.0/.well-known/openid-configuration", "/sandbox/.well-known/openid-configuration"):
        doc = browser.get(root + path).json()
        assert doc["issuer"] == f"{root}/sandbox/v2.0" == authority.issuer
        assert doc["authorization_endpoint"] == f"{root}/sandbox/oauth2/v2.0/authorize"
        assert doc["token_endpoint"] == f"{root}/sandbox/oauth2/v2.0/token"
        assert doc["jwks_uri"] == f"{root}/sandbox/discovery/v2.0/keys"
        assert doc["code_challenge_methods_supported"] == ["S256"]
    keys = browser.get(f"{root}/sandbox/discovery/v2.0/keys").json()["keys"]
    assert [(k["kty"], k["alg"], k["kid"]) for k in keys] == [("RSA", "RS256", sandbox.key.kid)]
    assert "d" not in keys[0]  # no private part
    token = sandbox._sign({"sub": "s"})
    assert jwt.decode(token, jwt.PyJWK(keys[0]).key, algorithms=["RS256"]) == {"sub": "s"}
    assert browser.get(f"{root}/other-tenant/v2.0/.well-known/openid-configuration").status_code == 400


def test_the_certificate_is_trusted_only_through_the_generated_ca(authority):
    with httpx.Client(verify=ssl.create_default_context()) as system_trust, pytest.raises(httpx.ConnectError):
        system_trust.get(f"{authority.root}/sandbox/v2.0/.well-known/openid-configuration")


def _authorize_query(**changes) -> dict:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid profile",
             "state": "st", "nonce": "nn", "code_challenge": challenge, "code_challenge_method": "S256", **changes}
    return {k: v for k, v in query.items() if v is not None}, verifier


def test_authorize_refuses_unknown_clients_and_unregistered_redirect_uris_without_redirecting(authority, browser):
    url = f"{authority.root}/sandbox/oauth2/v2.0/authorize"
    query, _ = _authorize_query(client_id="unknown")
    assert browser.get(url, params=query).status_code == 400
    query, _ = _authorize_query(redirect_uri="https://attacker.example/cb")
    answer = browser.get(url, params=query)
    assert answer.status_code == 400 and "location" not in answer.headers


@pytest.mark.parametrize(("changes", "error"), [
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "profile"}, "invalid_scope"),
])
def test_authorize_sends_errors_back_to_a_registered_redirect_uri(authority, browser, changes, error):
    query, _ = _authorize_query(**changes)
    answer = browser.get(f"{authority.root}/sandbox/oauth2/v2.0/authorize", params=query)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(f"{REDIRECT_URI}?error={error}&")
    assert "state=st" in answer.headers["location"]


def test_the_picker_lists_each_person_with_their_roles_and_the_token_endpoint_checks_pkce(authority, browser, sandbox):
    query, verifier = _authorize_query()
    auth_uri = str(httpx.URL(f"{authority.root}/sandbox/oauth2/v2.0/authorize", params=query))
    page = browser.get(auth_uri).text
    assert '<html lang="en">' in page and "<h1>Pick an account</h1>" in page
    assert re.search(r"Ada Admin <span[^>]*>\(ada\.admin@sandbox\.example; admin\)", page)
    assert "no app role" in page
    params = pick(browser, auth_uri, "aude.auditor@sandbox.example")
    assert params["state"] == "st"
    token_url = f"{authority.root}/sandbox/oauth2/v2.0/token"
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "client_secret": SECRET, "code_verifier": verifier}
    wrong_redirect = browser.post(token_url, data={**form, "redirect_uri": "https://console.test/other"})
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_grant"
    # the code is spent by the refused attempt: a new sign-in is needed
    params = pick(browser, auth_uri, "aude.auditor@sandbox.example")
    form["code"] = params["code"]
    no_verifier = browser.post(token_url, data={**form, "code_verifier": ""})
    assert no_verifier.json()["error"] == "invalid_grant"
    params = pick(browser, auth_uri, "aude.auditor@sandbox.example")
    form["code"] = params["code"]
    answer = browser.post(token_url, data=form)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = jwt.decode(body["id_token"], sandbox.key.private_key.public_key(), algorithms=["RS256"],
                        audience=CLIENT_ID, issuer=authority.issuer)
    assert claims["nonce"] == "nn" and claims["roles"] == ["auditor"]
    assert claims["preferred_username"] == "aude.auditor@sandbox.example" and claims["name"] == "Aude Auditor"
    assert claims["exp"] > claims["iat"] and claims["oid"] == sandbox.users["aude.auditor@sandbox.example"].oid
    assert body["token_type"] == "Bearer" and body["access_token"]
    again = browser.post(token_url, data=form)
    assert again.json()["error"] == "invalid_grant"  # one use
