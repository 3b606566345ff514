"""`provisioner sandbox oidc` serves the authority over HTTPS with the CA it writes, and prints
the console settings that point at it."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time

import httpx

from provisioner.demo.harness import REPO


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_serves_discovery_over_https_with_its_ca(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "sandbox", "oidc", "--port", str(port),
                             "--tls-dir", str(tmp_path / "tls"), "--client-id", "cli-console"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"https://127.0.0.1:{port}/sandbox/v2.0/.well-known/openid-configuration"
        deadline, doc = time.monotonic() + 30, None
        while doc is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the authority did not answer"
            try:
                context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
                doc = httpx.get(url, verify=context, timeout=2).json()
            except (OSError, httpx.HTTPError):
                time.sleep(0.2)
        assert doc["issuer"] == f"https://127.0.0.1:{port}/sandbox/v2.0"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"PROVISIONER_CONSOLE_OIDC_AUTHORITY=https://127.0.0.1:{port}/sandbox" in out
    assert "PROVISIONER_CONSOLE_OIDC_CLIENT_ID=cli-console" in out
    assert f"PROVISIONER_CONSOLE_OIDC_CA_FILE={tmp_path / 'tls' / 'ca.pem'}" in out
