"""Third-party SCIM servers for the tests, each run as a real process on a loopback port with
its own documented configuration (not ours): the target file's default settings must work
against each of them. A server module exposes ``start(workdir) -> RunningServer``; this module
holds what they share (start, wait until it answers, stop, keep its log)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from provisioner.sandbox.ports import free_port

START_TIMEOUT = 60.0


@dataclass
class RunningServer:
    """A started SCIM server: its base URL (ending in the SCIM root, no trailing slash), the
    bearer token it takes, its process and its log file."""

    name: str
    base_url: str
    token: str
    process: subprocess.Popen
    log: Path
    notes: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        """A plain HTTP client on the server, for reading back what it holds."""
        return httpx.Client(base_url=self.base_url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.token}",
                                     "Accept": "application/scim+json, application/json"})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def launch(name: str, command: Sequence[str], *, workdir: Path, port: int, base_path: str, token: str,
           ready_path: str = "/ServiceProviderConfig", env: dict[str, str] | None = None,
           cwd: Path | None = None) -> RunningServer:
    """Start ``command`` (which must listen on 127.0.0.1:``port``) and wait until
    ``GET base_url + ready_path`` answers 200 with the token."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(command), cwd=cwd, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT)
    server = RunningServer(name, f"http://127.0.0.1:{port}{base_path}", token, proc, log)
    deadline = time.monotonic() + START_TIMEOUT
    with server.client() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n{server.log_tail()}")
            try:
                if client.get(ready_path).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer {ready_path} within {START_TIMEOUT:.0f} s:\n{server.log_tail()}")


__all__ = ["RunningServer", "free_port", "launch"]
