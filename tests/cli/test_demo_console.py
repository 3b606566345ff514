"""The demo's IT console: served over HTTP on localhost with "Sign in with Entra ID" pointed at the
sandbox OpenID Connect authority (HTTPS, the run's CA, a client id and secret made for the run);
a person picked there is signed in by msal's authorization code flow, with their role, and audited."""

from __future__ import annotations

import asyncio
import re
import ssl
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.demo.console import DemoConsole
from provisioner.demo.harness import SandboxedService


def _pick(ca_file: Path, auth_uri: str, username: str) -> str:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), timeout=30) as browser:
        page = browser.get(auth_uri)
        assert page.status_code == 200 and "Pick an account" in page.text
        for action, body in re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S):
            fields = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', body)}
            if fields.get("username") == username:
                answer = browser.post(urljoin(str(page.url), unescape(action)), data=fields)
                assert answer.status_code == 303
                return answer.headers["location"]
    raise AssertionError(f"no account {username} offered")


async def test_the_demo_console_signs_an_approver_in_through_the_sandbox_authority(tmp_path: Path):
    it_console = DemoConsole(port=0, tls_dir=tmp_path / "oidc")
    try:
        async with SandboxedService(tmp_path / "svc", settings=it_console.prepare()) as svc:
            await it_console.serve(svc.app)
            assert it_console.sign_in_url == f"http://localhost:{it_console.port}/console/sign-in"
            assert svc.settings.console_oidc_redirect_uri == f"http://localhost:{it_console.port}/console/auth/callback"
            async with httpx.AsyncClient(timeout=30) as browser:
                page = await browser.get(it_console.sign_in_url)
                assert "Sign in with Entra ID" in page.text
                start = await browser.get(urljoin(it_console.sign_in_url, "/console/sign-in/entra"))
                assert start.status_code == 303
                assert start.headers["location"].startswith(it_console.authority.authority + "/oauth2/v2.0/authorize")
                callback = await asyncio.to_thread(_pick, it_console.authority.ca_file, start.headers["location"],
                                                   "april.approver@sandbox.example")
                assert callback.startswith(svc.settings.console_oidc_redirect_uri + "?code=")
                back = await browser.get(callback)
                assert back.status_code == 303
                approvals = await browser.get(urljoin(it_console.url + "/", "approvals"))
                assert approvals.status_code == 200
                assert "<strong>april.approver@sandbox.example</strong> (approver)" in approvals.text
                assert 'href="/console/evidence"' not in approvals.text  # approvers see no evidence
                replay = await browser.get(callback)  # the code and the flow are used up
                assert replay.status_code == 400
            with svc.db.read() as session:
                signed = [(r.data.get("by"), r.data.get("method")) for r in session.scalars(
                    select(AuditRecord).where(AuditRecord.kind == "console.signed_in"))]
            assert signed == [("console:april.approver@sandbox.example", "entra")]
    finally:
        await it_console.close()
