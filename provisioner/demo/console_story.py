"""The demo's last step: the IT console over HTTP, its address and sign-in links printed, and
sign-in with Entra ID (msal against the sandbox authority) checked by signing in."""

from __future__ import annotations

import asyncio
import signal

from rich.console import Console
from rich.table import Table

from provisioner.demo.console import DemoConsole, users_table
from provisioner.demo.harness import SandboxedService
from provisioner.tokens.service import create_token

console = Console()


async def show_console(svc: SandboxedService, it_console: DemoConsole, *, serve: bool) -> list[str]:
    """Serve the console, check that an admin and a person without a role sign in as they should,
    print how to sign in; with ``serve``, keep it up (and the workers running) until Ctrl-C."""
    console.rule("10. the IT console: sign in with Entra ID (the sandbox authority) or an API token", style="cyan")
    failures: list[str] = []
    with svc.db.transaction() as session:
        token = create_token(session, "demo-admin", {"admin"})
    await it_console.serve(svc.app)
    status, html = await it_console.sign_in("ada.admin@sandbox.example")
    if status != 200 or "ada.admin@sandbox.example" not in html or "Overview" not in html:
        failures.append(f"console: Ada Admin's Entra sign-in ended in {status}, not the overview")
    else:
        console.print("Ada Admin signed in through msal and the sandbox authority: the overview answered")
    status, html = await it_console.sign_in("nora.norole@sandbox.example")
    if status != 401 or "role" not in html:
        failures.append(f"console: Nora Norole (no app role) was not refused at sign-in ({status})")
    else:
        console.print("Nora Norole (no app role) was refused at sign-in, as she should be")
    table = Table("who (pick at the authority)", "username", "console role", title="sandbox authority's accounts")
    for row in users_table():
        table.add_row(*row)
    console.print(table)
    console.print(f"IT console:        [bold]{it_console.url}[/]")
    console.print(f"sign in:           [bold]{it_console.sign_in_url}[/]  (Sign in with Entra ID: pick an account)")
    console.print(f"or an API token:   {token}  (admin; paste it on the sign-in page)")
    console.print(f"sandbox authority: {it_console.authority.authority}  (CA: {it_console.authority.ca_file})")
    if not serve:
        console.print("the console stops with the demo: [bold]provisioner demo --serve[/] "
                      "(make demo-serve) keeps it up until Ctrl-C")
        return failures
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, svc.runtime.request_stop, stop)
    console.print("serving the console, with the workers running, until Ctrl-C")
    try:
        await svc.runtime.run_background(stop, reconcile=False)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return failures
