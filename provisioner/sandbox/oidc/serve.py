"""Run the sandbox authority over HTTPS: standalone (``provisioner sandbox oidc --port N``) or
in a thread of the current process (tests, the demo), with a CA and certificate made at start."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from provisioner.sandbox.oidc.app import OidcAuthority
from provisioner.sandbox.oidc.keys import TlsFiles, make_tls
from provisioner.sandbox.oidc.users import SandboxClient


@dataclass(frozen=True)
class RunningAuthority:
    """A served authority: ``authority`` is msal's ``authority=`` (with ``instance_discovery=False``),
    ``ca_file`` the CA to trust (``verify=``)."""

    sandbox: OidcAuthority
    root: str
    tls: TlsFiles

    @property
    def authority(self) -> str:
        return self.sandbox.authority_url(self.root)

    @property
    def issuer(self) -> str:
        return self.sandbox.issuer(self.root)

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    def console_settings(self, client: SandboxClient) -> dict[str, object]:
        """Settings fields (``provisioner.settings.Settings(**...)``) that point the console's
        Entra sign-in at this authority as ``client`` (registered here if it is not yet)."""
        self.sandbox.add_client(client)
        values: dict[str, object] = {"console_oidc_authority": self.authority,
                                     "console_oidc_client_id": client.client_id,
                                     "console_oidc_redirect_uri": client.redirect_uris[0],
                                     "console_oidc_ca_file": self.ca_file}
        if client.secret is not None:
            values["console_oidc_client_secret"] = client.secret
        return values


def _config(sandbox: OidcAuthority, host: str, port: int, tls: TlsFiles) -> uvicorn.Config:
    return uvicorn.Config(sandbox.app, host=host, port=port, log_level="warning", lifespan="off",
                          ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file))


def serve(sandbox: OidcAuthority, host: str = "127.0.0.1", port: int = 8443, *, tls_dir: Path) -> None:
    """Serve ``sandbox`` with uvicorn until interrupted; the CA is written to ``tls_dir/ca.pem``."""
    tls = make_tls(tls_dir, (host, "localhost") if host != "localhost" else ("localhost", "127.0.0.1"))
    sandbox.base_url = f"https://{host}:{port}"
    uvicorn.Server(_config(sandbox, host, port, tls)).run()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_authority(sandbox: OidcAuthority | None = None, *, host: str = "127.0.0.1",
                      port: int | None = None, tls_dir: Path | None = None) -> Iterator[RunningAuthority]:
    """Serve ``sandbox`` (a new default one if None) in a daemon thread for the block's duration."""
    sandbox = sandbox or OidcAuthority()
    with contextlib.ExitStack() as stack:
        if tls_dir is None:
            tls_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-oidc-")))
        tls = make_tls(tls_dir, (host, "localhost"))
        port = port or _free_port(host)
        root = f"https://{host}:{port}"
        sandbox.base_url = root
        server = uvicorn.Server(_config(sandbox, host, port, tls))
        thread = threading.Thread(target=server.run, name="sandbox-oidc", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox OIDC authority did not start on {root}")
            time.sleep(0.02)
        try:
            yield RunningAuthority(sandbox, root, tls)
        finally:
            server.should_exit = True
            server.force_exit = True  # clients' keep-alive connections (msal's session) are not waited for
            thread.join(10)
