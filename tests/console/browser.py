"""Browser-test plumbing: the service's app under uvicorn in a thread, and Debian's chromium
driven by Playwright in one thread of its own (one browser per test module).

Playwright's sync API runs in its own thread so the tests' event loop stays free to drain the
service's workers between steps: ``await browser.run(fn)`` runs ``fn(browser)`` there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = "/usr/bin/chromium"  # Debian's (make test installs it: the chromium stamp in the Makefile)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


class BrowserThread:
    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        started: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name="playwright", daemon=True)
        self._thread.start()
        started.result(timeout=60)

    def _main(self, started: concurrent.futures.Future) -> None:
        from playwright.sync_api import sync_playwright

        try:
            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            started.set_exception(exc)
            return
        started.set_result(None)
        while True:
            fn, done = self._jobs.get()
            if fn is None:
                break
            try:
                done.set_result(fn(browser))
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                done.set_exception(exc)
        browser.close()
        pw.stop()
        done.set_result(None)

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, done))
        return await asyncio.wrap_future(done)

    def close(self) -> None:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((None, done))
        done.result(timeout=30)
        self._thread.join(timeout=30)


class Served:
    """The app on 127.0.0.1 at a free port, in a thread (no lifespan: the test owns the service)."""

    def __init__(self, app) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://localhost:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.02)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def axe_violations(page) -> list[dict]:
    """Serious and critical accessibility violations on the page (axe-core)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def shot(page, name: str) -> None:
    """The README's screenshots (docs/console), refreshed when PROVISIONER_CONSOLE_SCREENSHOTS=1."""
    if os.environ.get("PROVISIONER_CONSOLE_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
