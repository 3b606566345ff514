"""Entra sign-in configuration from the settings object: what is missing is named, the client
secret comes from the variable or a file and never shows in a repr."""

from __future__ import annotations

import pytest

from provisioner.console.entra_signin import SignInConfig, SignInNotConfigured
from provisioner.settings import Settings


def test_missing_settings_are_named():
    with pytest.raises(SignInNotConfigured, match="PROVISIONER_CONSOLE_OIDC_AUTHORITY, "
                                                  "PROVISIONER_CONSOLE_OIDC_CLIENT_ID, PROVISIONER_CONSOLE_OIDC_REDIRECT_URI"):
        SignInConfig.from_settings(Settings())


def test_settings_from_the_environment_with_the_secret_from_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_AUTHORITY", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_REDIRECT_URI", "https://it.example/console/auth/callback")
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_ROLES", '{"Console.Admin": "admin", "Console.Auditor": "auditor"}')
    cfg = SignInConfig.from_settings(Settings())
    assert cfg.client_secret == "from-the-file"
    assert "from-the-file" not in repr(cfg)
    assert cfg.authority_base == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    assert cfg.role_map == {"Console.Admin": "admin", "Console.Auditor": "auditor"}
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_CLIENT_SECRET", "from-the-variable")
    settings = Settings()
    assert SignInConfig.from_settings(settings).client_secret == "from-the-variable"
    assert "from-the-variable" not in repr(settings)


def test_a_mapping_to_an_unknown_console_role_is_refused(monkeypatch):
    monkeypatch.setenv("PROVISIONER_CONSOLE_OIDC_ROLES", '{"Console.Root": "root"}')
    settings = Settings(console_oidc_authority="https://a/t", console_oidc_client_id="c",
                        console_oidc_redirect_uri="https://c/cb", console_oidc_client_secret="s")
    with pytest.raises(SignInNotConfigured, match=r"unknown console role\(s\) \['root'\]"):
        SignInConfig.from_settings(settings)


def test_exactly_one_client_credential_is_required(tmp_path):
    base = dict(console_oidc_authority="https://a/t", console_oidc_client_id="c", console_oidc_redirect_uri="https://c/cb")
    with pytest.raises(SignInNotConfigured, match="needs one client credential"):
        SignInConfig.from_settings(Settings(**base))
    pem = tmp_path / "console.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SignInNotConfigured, match="not both"):
        SignInConfig.from_settings(Settings(**base, console_oidc_client_secret="s",
                                            console_oidc_client_certificate_file=pem))
    cfg = SignInConfig.from_settings(Settings(**base, console_oidc_client_certificate_file=pem))
    assert cfg.client_secret is None and "PRIVATE KEY" in cfg.client_certificate_pem
    assert "PRIVATE" not in repr(cfg)


def test_the_running_sandbox_gives_the_settings_that_sign_in_through_it(authority, browser):
    from provisioner.console.entra_signin import EntraSignIn
    from provisioner.sandbox.oidc.users import SandboxClient
    from tests.console_oidc.conftest import pick

    client = SandboxClient("settings-console", ("https://console.test/console/auth/callback",), "settings-secret")
    settings = Settings(**authority.console_settings(client))
    rp = EntraSignIn(SignInConfig.from_settings(settings))
    auth_uri, flow = rp.begin()
    assert rp.finish(flow, pick(browser, auth_uri, "vic.viewer@sandbox.example")).roles == ("viewer",)


def test_an_unreadable_secret_file_or_an_unreachable_authority_is_a_sign_in_error(tmp_path):
    from provisioner.console.entra_signin import EntraSignIn, SignInError

    base = dict(console_oidc_authority="https://a/t", console_oidc_client_id="c", console_oidc_redirect_uri="https://c/cb")
    with pytest.raises(SignInNotConfigured, match="cannot read the console's client credential file .*missing"):
        SignInConfig.from_settings(Settings(**base, console_oidc_client_secret_file=tmp_path / "missing"))
    closed = EntraSignIn(SignInConfig(authority="https://127.0.0.1:9/tenant", client_id="c", client_secret="s",
                                      redirect_uri="https://c/cb"), timeout=2)
    with pytest.raises(SignInError, match="cannot reach the authority https://127.0.0.1:9/tenant"):
        closed.begin()
    with pytest.raises(SignInError, match="cannot use the authority http://127.0.0.1:9/tenant"):
        EntraSignIn(SignInConfig(authority="http://127.0.0.1:9/tenant", client_id="c", client_secret="s",
                                 redirect_uri="https://c/cb")).begin()
