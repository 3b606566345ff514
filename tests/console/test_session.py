"""Console sessions: the signed cookie's flags, a tampered or expired cookie is nobody, the key
comes from settings."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from provisioner.console import session
from provisioner.settings import Settings


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/console/in")
    def sign_in(request: Request, response: Response) -> dict:
        user = session.sign_in(response, session.ConsoleUser("alice", frozenset({"approver"})), request)
        return {"csrf": user.csrf}

    @app.get("/console/me")
    def me(request: Request) -> dict:
        user = session.current_user(request)
        return {"user": None if user is None else [user.name, sorted(user.roles), user.can_decide]}

    return app


def test_the_cookie_is_signed_httponly_lax_and_secure_except_on_local_http():
    session.configure(Settings(console_session_secret="k" * 32))
    local = TestClient(_app(), base_url="http://localhost")
    cookie = local.get("/console/in").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie and "secure" not in cookie
    assert local.get("/console/me").json()["user"] == ["alice", ["approver"], True]
    remote = TestClient(_app(), base_url="https://console.example.com")
    assert "; secure" in remote.get("/console/in").headers["set-cookie"].lower()
    plain_remote = TestClient(_app(), base_url="http://console.example.com")
    assert "; secure" in plain_remote.get("/console/in").headers["set-cookie"].lower()


def _who(cookie: str):
    fresh = TestClient(_app(), base_url="http://localhost")
    return fresh.get("/console/me", headers={"Cookie": f"{session.COOKIE}={cookie}"}).json()["user"]


def test_a_tampered_cookie_or_another_key_is_nobody():
    session.configure(Settings(console_session_secret="k" * 32))
    client = TestClient(_app(), base_url="http://localhost")
    client.get("/console/in")
    value = client.cookies.get(session.COOKIE)
    assert _who(value) == ["alice", ["approver"], True]
    body, signature = value.rsplit(".", 1)
    assert _who(body.replace(body[5], "A" if body[5] != "A" else "B", 1) + "." + signature) is None  # content
    assert _who(body + "." + signature[::-1]) is None  # signature
    session.configure(Settings(console_session_secret="other" * 8))  # a new key: old sessions end
    assert _who(value) is None


def test_an_expired_session_is_nobody(monkeypatch):
    session.configure(Settings(console_session_secret="k" * 32, console_session_hours=1))
    client = TestClient(_app(), base_url="http://localhost")
    client.get("/console/in")
    assert client.get("/console/me").json()["user"] is not None
    monkeypatch.setattr(session._keys, "max_age", -1)  # as if its hours had passed
    assert client.get("/console/me").json()["user"] is None


def test_a_sign_in_flow_is_kept_signed_and_taken_once():
    session.configure(Settings(console_session_secret="k" * 32))
    app = FastAPI()

    @app.get("/console/start")
    def start(request: Request, response: Response) -> dict:
        session.keep_flow(response, {"state": "s1", "nonce": "n1", "code_verifier": "v1"}, request)
        return {}

    @app.get("/console/callback")
    def callback(request: Request, response: Response) -> dict:
        return {"flow": session.take_flow(request, response)}

    client = TestClient(app, base_url="http://localhost")
    client.get("/console/start")
    value = client.cookies.get(session.FLOW_COOKIE)
    assert client.get("/console/callback").json()["flow"] == {"state": "s1", "nonce": "n1", "code_verifier": "v1"}
    assert client.get("/console/callback").json()["flow"] is None  # used once
    fresh = TestClient(app, base_url="http://localhost")
    forged = value.replace(value[3], "A" if value[3] != "A" else "B", 1)
    assert fresh.get("/console/callback", headers={"Cookie": f"{session.FLOW_COOKIE}={forged}"}).json()["flow"] is None
