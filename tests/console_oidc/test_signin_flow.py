"""Console sign-in through msal against the sandbox authority over real HTTPS: begin -> the
browser follows auth_uri, picks a person on the picker page -> redirected with code and state ->
finish -> who signed in, with console roles from the roles claim. And every way it must refuse."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.console.entra_signin import EntraSignIn, SignedIn, SignInError, nonce_hash
from provisioner.sandbox.oidc.app import IdTokenFaults
from tests.console_oidc.conftest import CLIENT_ID, MIXED, config, pick


@pytest.mark.parametrize(("username", "name", "roles"), [
    ("ada.admin@sandbox.example", "Ada Admin", ("admin",)),
    ("april.approver@sandbox.example", "April Approver", ("approver",)),
    ("aude.auditor@sandbox.example", "Aude Auditor", ("auditor",)),
    ("vic.viewer@sandbox.example", "Vic Viewer", ("viewer",)),
])
def test_sign_in_end_to_end_gives_the_person_and_their_console_roles(relying_party, browser, sandbox,
                                                                      username, name, roles):
    auth_uri, flow = relying_party.begin()
    assert auth_uri.startswith(f"{sandbox.base_url}/{sandbox.tenant}/oauth2/v2.0/authorize?")
    assert "code_challenge_method=S256" in auth_uri and "code_verifier" in flow
    flow = json.loads(json.dumps(flow))  # what a server-side session stores and gives back
    signed_in = relying_party.finish(flow, pick(browser, auth_uri, username))
    assert signed_in == SignedIn(name=name, username=username, roles=roles,
                                 oid=sandbox.users[username].oid, tenant_id=sandbox.tenant_id)


def test_unknown_roles_are_ignored_and_the_mapping_is_configurable(authority, browser):
    # Mo holds Finance.Reader (another app's role), auditor and Console.Approver.
    plain = EntraSignIn(config(authority))
    auth_uri, flow = plain.begin()
    assert plain.finish(flow, pick(browser, auth_uri, MIXED.username)).roles == ("auditor",)
    mapped = EntraSignIn(config(authority, role_map={"Console.Approver": "approver", "auditor": "auditor"}))
    auth_uri, flow = mapped.begin()
    assert mapped.finish(flow, pick(browser, auth_uri, MIXED.username)).roles == ("approver", "auditor")


def test_a_person_without_a_console_role_is_refused(relying_party, browser):
    auth_uri, flow = relying_party.begin()
    with pytest.raises(SignInError, match="nora.norole@sandbox.example has no console role"):
        relying_party.finish(flow, pick(browser, auth_uri, "nora.norole@sandbox.example"))


def test_a_wrong_state_is_refused_and_a_response_from_another_sign_in_too(relying_party, browser):
    auth_uri, flow = relying_party.begin()
    params = pick(browser, auth_uri, "ada.admin@sandbox.example")
    with pytest.raises(SignInError, match="state mismatch"):
        relying_party.finish(flow, {**params, "state": "forged"})
    other_uri, other_flow = relying_party.begin()
    with pytest.raises(SignInError, match="state mismatch"):
        relying_party.finish(other_flow, params)  # the callback of the first sign-in
    with pytest.raises(SignInError, match="no sign-in is under way"):
        relying_party.finish({}, params)


def test_an_error_from_the_authority_is_refused(relying_party):
    _, flow = relying_party.begin()
    with pytest.raises(SignInError, match="refused the sign-in: access_denied"):
        relying_party.finish(flow, {"error": "access_denied", "state": flow["state"]})


def test_a_pkce_verifier_mismatch_is_refused_by_the_authority_and_the_code_is_spent(relying_party, browser):
    auth_uri, flow = relying_party.begin()
    params = pick(browser, auth_uri, "ada.admin@sandbox.example")
    with pytest.raises(SignInError, match="invalid_grant.*PKCE verification failed"):
        relying_party.finish({**flow, "code_verifier": "x" * 64}, params)
    with pytest.raises(SignInError, match="invalid_grant.*unknown, used or expired"):
        relying_party.finish(flow, params)  # the right verifier, but the code was used


def test_a_wrong_client_secret_is_refused_by_the_authority(authority, browser):
    wrong = EntraSignIn(config(authority, client_secret="not-the-secret"))
    auth_uri, flow = wrong.begin()
    with pytest.raises(SignInError, match="invalid_client"):
        wrong.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example"))


@pytest.mark.parametrize(("faults", "reason"), [
    (IdTokenFaults(claims={"aud": "another-app"}), "another application"),
    (IdTokenFaults(claims={"iss": "https://login.example/other/v2.0"}), "another authority"),
    (IdTokenFaults(claims={"iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200,
                           "exp": int(time.time()) - 3600}), "expired"),
    (IdTokenFaults(claims={"nonce": nonce_hash("another sign-in")}), "nonce"),
    (IdTokenFaults(tamper=True), "signature does not verify"),
], ids=["wrong-audience", "wrong-issuer", "expired", "wrong-nonce", "tampered"])
def test_a_bad_id_token_from_the_authority_is_refused(relying_party, browser, sandbox, faults, reason):
    auth_uri, flow = relying_party.begin()
    sandbox.faults = faults
    with pytest.raises(SignInError, match=reason):
        relying_party.finish(flow, pick(browser, auth_uri, "vic.viewer@sandbox.example"))


def _claims(authority, **changes) -> dict:
    now = int(time.time())
    return {"iss": authority.issuer, "aud": CLIENT_ID, "sub": "s", "iat": now, "exp": now + 600,
            "nonce": nonce_hash("n"), "preferred_username": "x@sandbox.example", "roles": ["admin"], **changes}


def test_the_validator_checks_the_signature_and_the_nonce_itself(relying_party, authority, sandbox):
    # msal checks state and nonce too; these prove the service's own validation refuses.
    good = sandbox._sign(_claims(authority))
    assert relying_party.validate_id_token(good, nonce=nonce_hash("n"))["roles"] == ["admin"]
    with pytest.raises(SignInError, match="nonce does not match"):
        relying_party.validate_id_token(good, nonce=nonce_hash("other"))
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(authority), intruder, algorithm="RS256", headers={"kid": sandbox.key.kid})
    with pytest.raises(SignInError, match="signature does not verify"):
        relying_party.validate_id_token(forged, nonce=nonce_hash("n"))
    unknown_kid = jwt.encode(_claims(authority), intruder, algorithm="RS256", headers={"kid": "not-published"})
    with pytest.raises(SignInError, match="key the authority does not publish"):
        relying_party.validate_id_token(unknown_kid, nonce=nonce_hash("n"))
    hs256 = jwt.encode(_claims(authority), "a-shared-secret-of-enough-length-32b", algorithm="HS256",
                       headers={"kid": sandbox.key.kid})
    with pytest.raises(SignInError, match="not RS256"):
        relying_party.validate_id_token(hs256, nonce=nonce_hash("n"))
    no_exp = {k: v for k, v in _claims(authority).items() if k != "exp"}
    with pytest.raises(SignInError, match="exp"):
        relying_party.validate_id_token(sandbox._sign(no_exp), nonce=nonce_hash("n"))


def _certificate_pem(tmp_path, name: str) -> tuple[str, str]:
    """(private key + certificate PEM, certificate PEM) of a new self-signed certificate."""
    from provisioner.sandbox.oidc.keys import make_tls

    files = make_tls(tmp_path / name, ("console.test",))
    certificate = files.cert_file.read_text()
    return files.key_file.read_text() + certificate, certificate


def test_a_client_certificate_instead_of_a_secret(authority, browser, sandbox, tmp_path):
    from provisioner.sandbox.oidc.users import SandboxClient
    from tests.console_oidc.conftest import REDIRECT_URI

    bundle, certificate = _certificate_pem(tmp_path, "registered")
    sandbox.add_client(SandboxClient("console-cert-app", (REDIRECT_URI,), certificate_pem=certificate))
    with_cert = EntraSignIn(config(authority, client_id="console-cert-app", client_secret=None,
                                   client_certificate_pem=bundle))
    auth_uri, flow = with_cert.begin()
    signed_in = with_cert.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example"))
    assert signed_in.roles == ("admin",)
    other_bundle, _ = _certificate_pem(tmp_path, "other")
    impostor = EntraSignIn(config(authority, client_id="console-cert-app", client_secret=None,
                                  client_certificate_pem=other_bundle))
    auth_uri, flow = impostor.begin()
    with pytest.raises(SignInError, match="invalid_client"):
        impostor.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example"))
    secret_only = EntraSignIn(config(authority, client_id="console-cert-app", client_secret="guess"))
    auth_uri, flow = secret_only.begin()
    with pytest.raises(SignInError, match="invalid_client"):
        secret_only.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example"))


def test_a_rolled_over_signing_key_is_fetched_again_and_no_tokens_are_kept(authority, browser, sandbox, monkeypatch):
    from provisioner.console import entra_signin
    from provisioner.sandbox.oidc.keys import SigningKey

    rp = EntraSignIn(config(authority))
    auth_uri, flow = rp.begin()
    assert rp.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example")).roles == ("admin",)
    assert rp._app().get_accounts() == []  # msal's cache holds no one's tokens
    old_key = sandbox.key
    sandbox.key = SigningKey()
    try:
        auth_uri, flow = rp.begin()
        with pytest.raises(SignInError, match="key the authority does not publish"):  # JWKS read < 30 s ago
            rp.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example"))
        monkeypatch.setattr(entra_signin, "JWKS_MIN_REFRESH_SECONDS", 0.0)
        auth_uri, flow = rp.begin()
        assert rp.finish(flow, pick(browser, auth_uri, "ada.admin@sandbox.example")).roles == ("admin",)
    finally:
        sandbox.key = old_key
