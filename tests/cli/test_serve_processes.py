"""Real processes on real sockets: `provisioner sandbox graph`, `provisioner serve`, and on
PostgreSQL an extra `provisioner worker` sharing the queue (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from provisioner.demo.harness import REPO
from provisioner.intake.signing import signed_headers
from provisioner.migrations import upgrade
from provisioner.sandbox.ports import free_port
from tests.support import event, hire


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def processes(database_url: str, tmp_path: Path):
    started: list[subprocess.Popen] = []
    graph_port, api_port, scim_port = free_port(), free_port(), free_port()
    targets = tmp_path / "targets"
    targets.mkdir()
    data = yaml.safe_load((REPO / "targets" / "entra.yaml").read_text())
    data["graph_url"] = f"http://127.0.0.1:{graph_port}/v1.0"
    (targets / "entra.yaml").write_text(yaml.safe_dump(data))
    wiki = yaml.safe_load((REPO / "targets" / "wiki.yaml").read_text())
    wiki["base_url"] = f"http://127.0.0.1:{scim_port}/v2"
    (targets / "wiki.yaml").write_text(yaml.safe_dump(wiki))
    env = {**os.environ, "WIKI_SCIM_TOKEN": "wiki-token", "PROVISIONER_DATABASE_URL": database_url, "PROVISIONER_TARGETS_DIR": str(targets),
           "PROVISIONER_POLICIES_DIR": str(REPO / "policies"), "PROVISIONER_SANDBOX_TOKEN": "sandbox-token",
           "PROVISIONER_HR_SECRETS": json.dumps({"workday": "hr-secret"}), "PROVISIONER_LOG_LEVEL": "WARNING",
           "PROVISIONER_WORKER_POLL_SECONDS": "0.2", "PROVISIONER_DUE_EVENTS_SECONDS": "0.2"}
    upgrade(database_url)

    def start(*args: str) -> None:
        started.append(subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    start("sandbox", "graph", "--port", str(graph_port), "--no-throttle")
    # The wiki: the real third-party scim2-server, in its own process on a loopback port.
    started.append(subprocess.Popen([str(Path(sys.executable).parent / "scim2-server"), "--port", str(scim_port),
                                     "--bearer-token", "wiki-token"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
    start("serve", "--port", str(api_port))
    if database_url.startswith("postgresql"):
        start("worker")
    graph = httpx.Client(base_url=f"http://127.0.0.1:{graph_port}/v1.0",
                         headers={"Authorization": "Bearer sandbox-token"})
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}")
    scim = httpx.Client(base_url=f"http://127.0.0.1:{scim_port}/v2", headers={"Authorization": "Bearer wiki-token"})
    try:
        wait_for(lambda: scim.get("/ServiceProviderConfig").status_code == 200, what="scim2-server")
        wait_for(lambda: graph.get("/groups").status_code == 200, what="the Graph sandbox")
        wait_for(lambda: api.get("/healthz").status_code == 200, what="the API")
        yield api, graph, scim, started, env
    finally:
        scim.close()
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        graph.close()
        api.close()


def post(api: httpx.Client, payload) -> httpx.Response:
    body = json.dumps(payload).encode()
    return api.post("/hr/events", content=body, headers=signed_headers("workday", "hr-secret", body))


def users(graph: httpx.Client, employee_id: str) -> list[dict]:
    resp = graph.get("/users", params={"$filter": f"employeeId eq '{employee_id}'",
                                       "$select": "id,accountEnabled,userPrincipalName"})
    resp.raise_for_status()
    return resp.json()["value"]


def wiki_user(scim: httpx.Client, employee_id: str) -> dict:
    found = scim.get("/Users", params={"filter": f'externalId eq "{employee_id}"'}).json().get("Resources") or []
    return found[0] if found else {}


def provisioner_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "provisioner", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_serve_and_workers_provision_and_revoke_over_real_sockets(processes):
    api, graph, scim, procs, env = processes
    batch = [hire(f"p{n}", f"P{n}", "Proc", f"Ess{n}", "Engineering") for n in range(12)]
    assert post(api, {"events": batch}).status_code == 202
    wait_for(lambda: all(len(users(graph, f"P{n}")) == 1 for n in range(12)), what="joiners in Entra")
    uid = users(graph, "P0")[0]["id"]
    wait_for(lambda: len(graph.get(f"/users/{uid}/memberOf").json()["value"]) == 4, what="P0's groups")
    assert post(api, event("p-term", "terminate", "P0")).status_code == 202
    wait_for(lambda: users(graph, "P0")[0]["accountEnabled"] is False, what="P0 disabled")
    wait_for(lambda: graph.get(f"/users/{uid}/memberOf").json()["value"] == [], what="P0's groups removed")
    wait_for(lambda: wiki_user(scim, "P0").get("active") is False, what="P0 disabled in the wiki")
    wait_for(lambda: all(wiki_user(scim, f"P{n}") for n in range(12)), what="joiners in the wiki")
    for n in range(12):  # several processes, one queue: nothing was created twice
        assert len(users(graph, f"P{n}")) == 1
        assert len(scim.get("/Users", params={"filter": f'externalId eq "P{n}"'}).json()["Resources"]) == 1

    # The served SCIM endpoint (README's curl example): a read token from the CLI, then the people
    # as downstream apps read them, HR-owned employeeNumber and the entitlement groups included.
    token = provisioner_cli(env, "scim", "token", "create", "downstream", "--scope", "read").strip().splitlines()[-1]
    downstream = {"Authorization": f"Bearer {token}"}
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

    def person(emp: str) -> dict:
        resp = api.get("/scim/v2/Users", params={"filter": f'{ent}:employeeNumber eq "{emp}"'}, headers=downstream)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/scim+json"), resp.text
        [found] = resp.json()["Resources"]
        return found

    p1, p0 = person("P1"), person("P0")
    assert p1[ent]["employeeNumber"] == "P1" and p1["active"] is True
    assert {g["display"] for g in p1["groups"]} >= {"Engineering"}, p1["groups"]
    assert p0["active"] is False and p0.get("groups", []) == []
    by_name = api.get("/scim/v2/Users", params={"filter": f'userName eq "{p1["userName"].upper()}"'}, headers=downstream)
    assert [u["id"] for u in by_name.json()["Resources"]] == [p1["id"]]
    refused = api.post("/scim/v2/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                "userName": "svc@example.com"}, headers=downstream)
    assert refused.status_code == 403
    provisioner_cli(env, "scim", "token", "revoke", "downstream")
    assert api.get("/scim/v2/Users", headers=downstream).status_code == 401
    assert all(proc.poll() is None for proc in procs), "a process died"
