"""The demo's IT console: the service's app served over real HTTP on localhost, with "Sign in with
Entra ID" pointed at the sandbox OpenID Connect authority (HTTPS, a CA made for the run, an app
registration with a client id and secret made for the run), so that msal's authorization code
flow runs for real; and an admin API token for the token sign-in.

``DemoConsole.prepare()`` runs before the service is built (its settings name the authority and the
console's redirect URI); ``serve(app)`` starts uvicorn in the current event loop (the one the
service's workers and the in-process Graph sandbox use); ``sign_in(username)`` is what a browser
does, over HTTP, and is how the demo proves the printed link works.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import uvicorn

from provisioner.sandbox.oidc.app import OidcAuthority
from provisioner.sandbox.oidc.serve import RunningAuthority, running_authority
from provisioner.sandbox.oidc.users import DEFAULT_USERS, SandboxClient

HOST = "127.0.0.1"
_FORM = re.compile(r'<form method="post" action="([^"]+)">(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _socket(port: int) -> socket.socket:
    """A listening socket on ``port`` (0, or ``port`` already taken: a free one)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.bind((HOST, 0))
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo decides what Ctrl-C stops."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class DemoConsole:
    """The console of one demo run. ``url`` is its address (http://localhost:PORT/console)."""

    port: int = 8000
    tls_dir: Path | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task | None = None

    def prepare(self) -> dict[str, object]:
        """Start the sandbox authority, register the console's app there (a client id and secret
        made for this run) and bind the console's port; the Settings fields for the service."""
        self.sock = _socket(self.port)
        self.port = self.sock.getsockname()[1]
        self.root = f"http://localhost:{self.port}"
        self.client = SandboxClient(f"provisioner-demo-{secrets.token_hex(4)}",
                                    (f"{self.root}/console/auth/callback",), secrets.token_urlsafe(32))
        self.authority: RunningAuthority = self._stack.enter_context(
            running_authority(OidcAuthority(tenant="demo"), tls_dir=self.tls_dir))
        return {**self.authority.console_settings(self.client),
                "console_session_secret": secrets.token_urlsafe(32)}

    @property
    def url(self) -> str:
        return f"{self.root}/console"

    @property
    def sign_in_url(self) -> str:
        return f"{self.root}/console/sign-in"

    async def serve(self, app) -> None:
        """Serve ``app`` on the bound port in this event loop (no lifespan: the demo owns the service)."""
        self._server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError(f"the demo console did not start on {self.root}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._server is not None and self._task is not None and not self._task.done():
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if hasattr(self, "sock"):
            self.sock.close()
        self._stack.close()

    async def sign_in(self, username: str) -> tuple[int, str]:
        """Sign in as ``username`` with Entra ID, as a browser does: the console's "Sign in with
        Entra ID" link, the authority's picker (HTTPS, the run's CA), the callback; then the
        overview. Returns the overview's status and HTML."""
        async with httpx.AsyncClient(base_url=self.root, timeout=30) as console:
            start = await console.get("/console/sign-in/entra")
            if start.status_code != 303:
                return start.status_code, start.text
            callback = await asyncio.to_thread(self._pick, start.headers["location"], username)
            back = await console.get(callback)
            if back.status_code != 303:
                return back.status_code, back.text
            overview = await console.get("/console")
            return overview.status_code, overview.text

    def _pick(self, auth_uri: str, username: str) -> str:
        """At the authority: open the picker, submit ``username``'s form; the callback URL."""
        verify = ssl.create_default_context(cafile=str(self.authority.ca_file))
        with httpx.Client(verify=verify, timeout=30) as browser:
            page = browser.get(auth_uri)
            page.raise_for_status()
            for action, body in _FORM.findall(page.text):
                fields = {unescape(n): unescape(v) for n, v in _HIDDEN.findall(body)}
                if fields.get("username") == username:
                    answer = browser.post(urljoin(str(page.url), unescape(action)), data=fields)
                    return answer.headers["location"]
        raise LookupError(f"the sandbox authority offers no account {username}")


def users_table() -> list[tuple[str, str, str]]:
    """Who can be picked at the demo's authority: (name, username, console role)."""
    return [(u.name, u.username, ", ".join(u.roles) or "none: refused") for u in DEFAULT_USERS]
