"""The console's sign-in with Entra ID, end to end: the console's own routes send the browser to
the sandbox OpenID Connect authority (real HTTPS, msal on the console's side), a person is picked,
the callback starts a console session with the token's roles, and the sign-in is audited. A
tampered or replayed callback starts none."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.sandbox.oidc.users import SandboxClient
from tests.console_oidc.conftest import authority, pick  # noqa: F401 (fixture)

CALLBACK = "http://localhost/console/auth/callback"
CLIENT = SandboxClient("console-e2e", (CALLBACK,), "console-e2e-secret")


def _point_console_at(cc, authority) -> None:  # noqa: F811
    settings = cc.app.state.settings
    cc.app.state.settings = type(settings)(**{**settings.model_dump(), **authority.console_settings(CLIENT)})
    cc.app.state.console_entra = None


async def _sign_in(cc, authority, username: str) -> tuple[httpx.AsyncClient, httpx.Response]:  # noqa: F811
    console = httpx.AsyncClient(transport=httpx.ASGITransport(app=cc.app), base_url="http://localhost")
    page = await console.get("/console/sign-in")
    assert "Sign in with Entra ID" in page.text
    start = await console.get("/console/sign-in/entra")
    assert start.status_code == 303
    auth_uri = start.headers["location"]
    assert auth_uri.startswith(authority.authority)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(authority.ca_file)), timeout=10) as browser:
        params = _pick(browser, auth_uri, username)
    back = await console.get("/console/auth/callback", params=params)
    return console, back


def _pick(browser: httpx.Client, auth_uri: str, username: str) -> dict[str, str]:
    import tests.console_oidc.conftest as oidc

    saved = oidc.REDIRECT_URI
    oidc.REDIRECT_URI = CALLBACK  # pick() checks the redirect goes to the registered callback
    try:
        return pick(browser, auth_uri, username)
    finally:
        oidc.REDIRECT_URI = saved


async def test_an_approver_signs_in_with_entra_id_and_acts_as_themselves(cc, authority):  # noqa: F811
    _point_console_at(cc, authority)
    console, back = await _sign_in(cc, authority, "april.approver@sandbox.example")
    try:
        assert back.status_code == 303 and back.headers["location"].rstrip("/").endswith("/console")
        overview = await console.get("/console")
        assert overview.status_code == 200
        assert "april.approver@sandbox.example" in overview.text
        with cc.db.read() as session:
            kinds = [(r.kind, r.data.get("by"), r.data.get("method")) for r in session.scalars(
                select(AuditRecord).where(AuditRecord.kind == "console.signed_in"))]
        assert ("console.signed_in", "console:april.approver@sandbox.example", "entra") in kinds
    finally:
        await console.aclose()


async def test_a_replayed_or_tampered_callback_starts_no_session(cc, authority):  # noqa: F811
    _point_console_at(cc, authority)
    console, back = await _sign_in(cc, authority, "vic.viewer@sandbox.example")
    try:
        assert back.status_code == 303
        code_and_state = dict(parse_qsl(urlsplit(str(back.request.url)).query))
        fresh = httpx.AsyncClient(transport=httpx.ASGITransport(app=cc.app), base_url="http://localhost")
        try:
            replay = await fresh.get("/console/auth/callback", params=code_and_state)  # no flow kept here
            assert replay.status_code == 400 and "expired or was already used" in replay.text
            assert (await fresh.get("/console")).status_code == 303  # still signed out
        finally:
            await fresh.aclose()
    finally:
        await console.aclose()
