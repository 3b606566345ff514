"""The console over the service with change control configured (tests/change_control/conftest.py):
a sensitive Finance group in the Graph sandbox, tokens of every role."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.change_control.conftest import cc, graph, tokens, wiki  # noqa: F401 (fixtures)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class ConsoleClient:
    """A browser-less console session over the app (cookies kept), for the HTTP-level tests."""

    def __init__(self, app) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost",
                                      follow_redirects=True)
        self.csrf = ""

    async def sign_in(self, token: str) -> httpx.Response:
        form = await self.http.get("/console/sign-in")
        resp = await self.http.post("/console/sign-in", data={"token": token,
                                                              "csrf_token": CSRF.search(form.text).group(1)})
        found = CSRF.search(resp.text)
        self.csrf = found.group(1) if found else ""
        return resp

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(self, path: str, data: dict | None = None, *, csrf: bool = True) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.csrf
        return await self.http.post(path, data=body)


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
async def console(cc):  # noqa: F811
    clients: list[ConsoleClient] = []

    def make() -> ConsoleClient:
        clients.append(ConsoleClient(cc.app))
        return clients[-1]

    yield make
    for c in clients:
        await c.http.aclose()
