"""The embedded default, wired for the demo, tests and benchmarks: the real service (API,
processor, worker, msgraph-sdk connector) against the in-process Graph sandbox, no sockets.

This is the one place production code meets the sandbox.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

from provisioner.db import Database
from provisioner.intake.signing import signed_headers
from provisioner.migrations import upgrade
from provisioner.rollouts.service import roll_out
from provisioner.runtime import Runtime
from provisioner.sandbox.graph.app import GraphSandbox
from provisioner.sandbox.scim.app import ScimSandbox
from provisioner.settings import Settings
from provisioner.targets.config import load_targets

REPO = Path(__file__).resolve().parents[2]
HR_SOURCE = "workday"


def write_sandbox_targets(folder: Path, token_file: Path, *, source: Path | None = None,
                          overrides: dict[str, Any] | None = None,
                          scim_overrides: dict[str, dict[str, Any]] | None = None,
                          scim_servers: dict[str, tuple[str, Path]] | None = None) -> Path:
    """Copy the target files, pointing every Entra target at the in-process Graph sandbox and
    every SCIM target at an in-process scim2-server (both reached without sockets), or, for a
    SCIM target named in ``scim_servers`` (name -> (base URL, token file)), at that real server."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((source or REPO / "targets").glob("*.y*ml")):
        data = yaml.safe_load(path.read_text())
        if data.get("kind") == "entra":
            data["graph_url"] = "http://127.0.0.1/v1.0"
            data["auth"] = {"method": "static_token", "token": {"file": str(token_file)}}
            data.update(overrides or {})
        elif data.get("kind") == "scim":
            name = data.get("name", path.stem)
            base_url, token_path = (scim_servers or {}).get(name, (f"http://{name}.scim.test/v2", token_file))
            data["base_url"] = base_url
            data["auth"] = {"method": "bearer", "token": {"file": str(token_path)}}
            data.update((scim_overrides or {}).get(name, {}))
        (folder / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


class SandboxedService:
    """``async with SandboxedService(workdir) as svc:`` then ``await svc.send(...)``, ``await svc.drain()``."""

    def __init__(self, workdir: Path, *, database_url: str | None = None, sandbox_options: dict[str, Any] | None = None,
                 policies_dir: Path | None = None, targets_dir: Path | None = None,
                 target_overrides: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                 migrate: bool = True, scim_options: dict[str, dict[str, Any]] | None = None,
                 scim_overrides: dict[str, dict[str, Any]] | None = None,
                 wrap_transport: Any = None, scim_servers: dict[str, tuple[str, str]] | None = None) -> None:
        """``scim_servers`` (SCIM target name -> (base URL, bearer token)) points those targets at
        real servers over real HTTP instead of an in-process scim2-server."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.hr_secret = secrets.token_hex(16)
        self.metrics_token = secrets.token_hex(16)  # what a Prometheus scraper sends (metrics())
        token = secrets.token_hex(16)
        token_file = workdir / "sandbox-token"
        token_file.write_text(token)
        self.sandbox = GraphSandbox(token=token, **(sandbox_options or {}))
        self.sandbox_token = token
        real: dict[str, tuple[str, Path]] = {}
        for name, (base_url, real_token) in (scim_servers or {}).items():
            real[name] = (base_url, workdir / f"{name}-scim-token")
            real[name][1].write_text(real_token)
        targets = write_sandbox_targets(workdir / "targets", token_file, source=targets_dir,
                                        overrides=target_overrides, scim_overrides=scim_overrides,
                                        scim_servers=real)
        sources = workdir / "hr_sources"  # the HR source also posts SCIM bulk uploads (hr_sources/bulk)
        sources.mkdir(exist_ok=True)
        (sources / f"{HR_SOURCE}.yaml").write_text("bulk_upload: {}\n")
        url = database_url or f"sqlite:///{workdir / 'provisioner.db'}"
        if migrate:
            upgrade(url)
        self.settings = Settings(database_url=url, policies_dir=policies_dir or REPO / "policies",
                                 targets_dir=targets, hr_secrets={HR_SOURCE: self.hr_secret},
                                 **{"metrics_token": self.metrics_token, "hr_sources_dir": sources,
                                    **(settings or {})})
        self.db = Database(url)
        transports: dict[str, httpx.AsyncBaseTransport] = {}
        self.group_ids: dict[str, str] = {}  # managed group name -> sandbox object id
        self.scim: dict[str, ScimSandbox] = {}  # SCIM target name -> its in-process scim2-server
        for name, cfg in load_targets(targets).items():
            if cfg.kind == "entra":
                self.sandbox.verify_domain(cfg.accounts.domain)  # as the tenant's admin did
                transports[name] = httpx.ASGITransport(app=self.sandbox.app)
                for group in cfg.managed_groups:
                    self.group_ids[group.name] = self.sandbox.seed_group(group.name, id=group.id)
            elif cfg.kind == "scim" and name in real:
                transports[name] = httpx.AsyncHTTPTransport(retries=0)  # a real server on loopback
            elif cfg.kind == "scim":
                self.scim[name] = ScimSandbox(token=token, **(scim_options or {}).get(name, {}))
                transports[name] = self.scim[name].transport()
        if wrap_transport is not None:  # e.g. a fault injector around some targets
            transports = {name: wrap_transport(name, t) for name, t in transports.items()}
        self.transports = transports
        self.runtime = Runtime.load(self.settings, db=self.db, transports=transports)
        # As `provisioner serve` starts: a policy set not applied before re-plans whom it affects.
        self.rollout = roll_out(self.db, self.runtime.ctx, self.settings, trigger="start")
        self.app = self.runtime.create_app()
        self.api = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://provisioner")

    async def __aenter__(self) -> SandboxedService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.app.state.intake_writer.aclose()  # no lifespan over an ASGI transport
        await self.api.aclose()
        await self.runtime.aclose()

    def signed(self, body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        return signed_headers(HR_SOURCE, secret or self.hr_secret, body, timestamp)

    async def send(self, events: dict[str, Any] | Iterable[dict[str, Any]]) -> httpx.Response:
        """POST one event (a dict) or a batch (a list), signed as the HR system does."""
        payload = events if isinstance(events, dict) else {"events": list(events)}
        body = json.dumps(payload).encode()
        return await self.api.post("/hr/events", content=body, headers=self.signed(body))

    async def metrics(self) -> str:
        """GET /metrics as the scraper does, with the metrics token."""
        resp = await self.api.get("/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"})
        resp.raise_for_status()
        return resp.text

    async def drain(self, max_wait: float = 60.0) -> None:
        await self.runtime.drain(max_wait=max_wait)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

