"""The processes of ``provisioner bench scale`` and what is read from them.

- :class:`Processes` starts ``python -m provisioner ...`` children (stderr to one log file each)
  and watches every child's peak RSS: ``VmHWM`` of ``/proc/<pid>/status`` (the kernel's high-water
  mark) read every 50 ms while it lives and once more before it is stopped. ``ru_maxrss`` is not
  used: a child's counts its parent's size at the ``exec``.
- :class:`SandboxClient` reads the Graph sandbox process's counters and tenant through its
  inspection routes (``provisioner/sandbox/graph/inspect.py``): no Graph quota, not counted.
- :func:`wait_read_back` polls until every expected account and membership is in the tenant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

POLL = 0.05


def vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Finished:
    code: int
    wall: float
    output: str


@dataclass
class Processes:
    """Children with their peak RSS per label (``serve``, ``import``, ``sandbox`` ...)."""

    env: dict[str, str]
    logs: Path
    peak_mb: dict[str, float] = field(default_factory=dict)
    _live: dict[int, tuple[str, subprocess.Popen]] = field(default_factory=dict)
    _n: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _note(self, label: str, pid: int) -> None:
        mb = vm_hwm_mb(pid)
        if mb is not None:
            self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), mb)

    def _watch(self) -> None:
        while not self._stop.wait(POLL):
            with self._lock:
                live = list(self._live.items())
            for pid, (label, _) in live:
                self._note(label, pid)

    def start(self, label: str, *args: str, env: dict[str, str] | None = None,
              stdout: Any = subprocess.DEVNULL) -> subprocess.Popen:
        self._n += 1
        with open(self.logs / f"{self._n:03d}-{label.replace(' ', '-')}.log", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=env or self.env,
                                    stdout=stdout, stderr=err)
        with self._lock:
            self._live[proc.pid] = (label, proc)
        return proc

    def _forget(self, proc: subprocess.Popen) -> None:
        with self._lock:
            label, _ = self._live.pop(proc.pid, ("", proc))
        if label:
            self._note(label, proc.pid)

    def run(self, label: str, *args: str, timeout: float, env: dict[str, str] | None = None) -> Finished:
        """Run a command to its end (its stdout kept), timed from start to exit."""
        out = self.logs / f"{self._n + 1:03d}-{label.replace(' ', '-')}.out"
        t0 = time.monotonic()
        with open(out, "wb") as handle:
            proc = self.start(label, *args, env=env, stdout=handle)
            try:
                while proc.poll() is None:  # VmHWM once more just before the exit is reaped
                    self._note(label, proc.pid)
                    if time.monotonic() - t0 > timeout:
                        proc.kill()
                    time.sleep(0.01)
            finally:
                self._forget(proc)
        return Finished(proc.returncode, time.monotonic() - t0, out.read_text(errors="replace"))

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        self._note(self._live.get(proc.pid, ("?", proc))[0], proc.pid)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget(proc)

    def close(self) -> None:
        with self._lock:
            live = [p for _, p in self._live.values()]
        for proc in live:
            self.stop(proc)
        self._stop.set()


class SandboxClient:
    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)

    def stats(self) -> dict[str, Any]:
        response = self.client.get("/_sandbox/stats")
        response.raise_for_status()
        return response.json()

    def tenant(self) -> dict[str, Any]:
        response = self.client.get("/_sandbox/tenant")
        response.raise_for_status()
        return response.json()

    def drift(self, remove: list[tuple[str, str]]) -> None:
        self.client.post("/_sandbox/drift", json={"remove": remove}).raise_for_status()

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.stats()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.client.close()


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class ReadBack:
    seconds: float | None  # from the start given until complete; None: not within the timeout
    missing_accounts: list[str]
    missing_memberships: list[str]  # "E000042: Scale dept Sales"
    missing_total: int
    wrong: list[str]  # accounts for no known person, more than one account for a person

    @property
    def complete(self) -> bool:
        return self.seconds is not None


def judge(tenant: dict[str, Any], expected: dict[str, set[str]]) -> tuple[list[str], list[str], int, list[str]]:
    """What is missing from ``tenant`` against ``expected`` (employee id -> group names)."""
    by_emp: dict[str, list[str]] = {}
    for user_id, emp, _upn, _enabled in tenant["users"]:
        by_emp.setdefault(emp or "", []).append(user_id)
    members = {name: set(ids) for name, ids in tenant["groups"].items()}
    accounts, memberships, wrong, total = [], [], [], 0
    for emp, groups in expected.items():
        users = by_emp.get(emp, [])
        if len(users) > 1:
            wrong.append(f"{emp}: {len(users)} accounts")
        if not users:
            accounts.append(emp)
            total += len(groups)
            continue
        for group in sorted(groups):
            if not any(u in members.get(group, ()) for u in users):
                total += 1
                if len(memberships) < 50:
                    memberships.append(f"{emp}: {group}")
    wrong += [f"account for {emp or 'no employee id'}" for emp in by_emp if emp not in expected]
    return accounts, memberships, total, wrong


def wait_read_back(sandbox: SandboxClient, expected: dict[str, set[str]], started: float, timeout: float,
                   *, users_at_least: int, memberships_at_least: int,
                   say: Callable[[str], None] | None = None) -> ReadBack:
    """Poll the counts (cheap) and, once they are reached, compare the whole tenant with
    ``expected``; complete when nothing is missing. Times are from ``started`` (monotonic);
    ``say`` hears the counts every 15 s."""
    shown = time.monotonic()
    while True:
        now = time.monotonic()
        s = sandbox.stats()
        if say is not None and now - shown >= 15:
            shown = now
            say(f"{now - started:6.0f} s: {s['users']:,} of {users_at_least:,} accounts, {s['memberships']:,} of "
                f"{memberships_at_least:,} memberships, {s['writes']:,} Graph writes so far")
        if s["users"] >= users_at_least and s["memberships"] >= memberships_at_least:
            accounts, memberships, total, wrong = judge(sandbox.tenant(), expected)
            if not accounts and not total:
                return ReadBack(now - started, [], [], 0, wrong)
        if now - started > timeout:
            accounts, memberships, total, wrong = judge(sandbox.tenant(), expected)
            return ReadBack(None, accounts, memberships, total, wrong)
        time.sleep(0.25)


def settle(sandbox: SandboxClient, quiet: float = 2.0, limit: float = 60.0) -> dict[str, Any]:
    """The counters once no Graph call has arrived for ``quiet`` seconds (the service's trailing
    read-backs and verifications belong to the phase measured)."""
    t0, last, stats = time.monotonic(), None, sandbox.stats()
    still_since = time.monotonic()
    while time.monotonic() - t0 < limit:
        time.sleep(0.25)
        stats = sandbox.stats()
        if stats["http_calls"] != last:
            last, still_since = stats["http_calls"], time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return stats


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, int):
            out[key] = value - before.get(key, 0)
        elif isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()
                        if v - before.get(key, {}).get(k, 0)}
    return out


def environment(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
