"""``provisioner demo``: joiners, a mover, leave and return, a rehire and leavers, through the
real HTTP API and the real workers, on SQLite, the in-process Graph sandbox and a SCIM app (the
wiki: the third-party scim2-server, in-process).

It prints per person and per system what happened, verifies the sandbox's actual state (not the
service's belief) and exits non-zero if any expectation fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from provisioner.audit.verify import verify_chain
from provisioner.clock import clock, utcnow
from provisioner.demo.console import DemoConsole
from provisioner.demo.console_story import show_console
from provisioner.demo.harness import REPO, SandboxedService
from provisioner.demo.wiki import report_wiki
from provisioner.evidence import service as evidence
from provisioner.identities import repository as identities
from provisioner.planner.preview import preview
from provisioner.rollouts import repository as rollouts

console = Console()
BERLIN = ZoneInfo("Europe/Berlin")


def _event(event_id: str, etype: str, emp: str, at: datetime, **attrs) -> dict:
    body = {"event_id": event_id, "type": etype, "employee_id": emp, "effective_at": at.isoformat()}
    if attrs.pop("immediate", False):
        body["immediate"] = True
    if "cancels" in attrs:
        body["cancels_event_id"] = attrs.pop("cancels")
    if attrs:
        body["attributes"] = attrs
    return body


@dataclass
class Expectation:
    employee_id: str
    state: str
    enabled: bool | None  # None: no account expected
    groups: set[str] = field(default_factory=set)


async def run_demo(*, keep: bool = False, serve: bool = False, port: int = 8000) -> int:
    """The story, then the IT console over HTTP with sign-in through the sandbox OpenID Connect
    authority (checked by signing in); ``serve`` keeps the console up until Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="provisioner-demo-"))
    console.rule("[bold]provisioner demo[/]: SQLite + in-process Graph sandbox + a SCIM app (scim2-server), "
                 "real API and workers")
    console.print(f"working folder: {workdir}")
    # The policies are copied: the story edits them (step 7) and rolls the change out.
    policies = workdir / "policies"
    shutil.copytree(REPO / "policies", policies)
    it_console = DemoConsole(port=port, tls_dir=workdir / "sandbox-oidc")
    try:
        async with SandboxedService(workdir, policies_dir=policies, settings=it_console.prepare()) as svc:
            failures = await _story(svc)
            failures += await show_console(svc, it_console, serve=serve)
    finally:
        await it_console.close()
    if not keep:
        svc.cleanup()
    if failures:
        console.print(f"[bold red]{len(failures)} expectation(s) failed[/]")
        for f in failures:
            console.print(f"  [red]x[/] {f}")
        return 1
    console.print("[bold green]all expectations hold[/]")
    return 0


async def _story(svc: SandboxedService) -> list[str]:
    now = utcnow()
    sb = svc.sandbox
    failures: list[str] = []
    # Someone already has an account in Entra (created by hand before the service existed).
    existing = sb.seed_user("k.johnson@example.com", display_name="Katherine Johnson", employee_id="E1004")
    # ... and in the wiki, where she signed up herself under her e-mail address.
    wiki_existing = await svc.scim["wiki"].add("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "k.johnson@example.com",
        "displayName": "Katherine J."})

    def step(title: str) -> None:
        console.rule(title, style="cyan")

    async def send(events, expect: int = 202) -> dict:
        resp = await svc.send(events)
        if resp.status_code != expect:
            failures.append(f"POST /hr/events answered {resp.status_code}, expected {expect}: {resp.text}")
        return resp.json()

    step("1. joiners (one batch), with a name collision and an existing account to link")
    base = dict(location="DE-BER-01", employment_type="employee")
    await send([
        _event("evt-001", "hire", "E1001", now, given_name="Ada", family_name="Lovelace",
               department="Engineering", job_code="ENG2", title="Engineer", **base),
        _event("evt-002", "hire", "E1002", now, given_name="Grace", family_name="Hopper",
               department="Engineering", job_code="MGR1", title="Head of Engineering", **base),
        _event("evt-003", "hire", "E1003", now, given_name="Alan", family_name="Turing",
               department="Sales", job_code="SE1", title="Sales Engineer", location="UK-LON",
               employment_type="contractor"),
        _event("evt-004", "hire", "E1004", now, given_name="Katherine", family_name="Johnson",
               department="Finance", job_code="FIN1", title="Analyst", location="US-NYC",
               employment_type="employee"),
        _event("evt-005", "hire", "E1005", now, given_name="Ada", family_name="Lovelace",
               department="Finance", job_code="FIN2", title="Controller", location="UK-LON",
               employment_type="employee"),
    ])
    again = await send(_event("evt-001", "hire", "E1001", now, given_name="Ada", family_name="Lovelace",
                              department="Engineering", job_code="ENG2", title="Engineer", **base))
    console.print(f"the same event again: same answer ({again['status']}, received {again['received_at']})")
    await svc.drain()

    step("2. mover: Alan moves from Sales to Engineering")
    await send(_event("evt-010", "transfer", "E1003", utcnow(), department="Engineering",
                      job_code="ENG1", title="Engineer"))
    await svc.drain()

    step("3. leave of absence and return: Katherine")
    await send(_event("evt-020", "leave", "E1004", utcnow()))
    await svc.drain()
    on_leave = sb.user(existing) or {}
    if on_leave.get("accountEnabled") is not False:
        failures.append("E1004 on leave: account still enabled in Entra")
    await send(_event("evt-021", "return", "E1004", utcnow()))
    await svc.drain()

    step("4. leavers: Grace at 17:00 Berlin on her last day; Alan immediately; a withdrawn one")
    last_day = (now.astimezone(BERLIN) + timedelta(days=1)).replace(hour=17, minute=0, second=0, microsecond=0)
    await send(_event("evt-030", "terminate", "E1002", last_day))
    await send(_event("evt-031", "terminate", "E1001", now + timedelta(days=3)))
    await send(_event("evt-032", "cancel", "E1001", utcnow(), cancels="evt-031"))
    await send(_event("evt-033", "terminate", "E1003", utcnow(), immediate=True))
    await svc.drain()
    grace = sb.user(_remote(svc, "E1002")) or {}
    console.print(f"before 17:00 Berlin, Grace's account enabled: {grace.get('accountEnabled')}")
    if grace.get("accountEnabled") is not True:
        failures.append("E1002's terminate fired before its effective time")
    clock.advance(last_day.astimezone(UTC) - utcnow() + timedelta(seconds=1))
    await svc.drain()
    console.print(f"after 17:00 Berlin ({last_day.isoformat()}), Grace's account enabled: "
                  f"{(sb.user(_remote(svc, 'E1002')) or {}).get('accountEnabled')}")

    step("4b. a termination HR entered two days late, and contract end dates")
    await send([
        _event("evt-060", "hire", "E1006", now - timedelta(days=30), given_name="Barbara", family_name="Liskov",
               department="Engineering", job_code="ENG2", title="Engineer", location="US-BOS",
               employment_type="employee"),
        _event("evt-061", "update", "E1006", utcnow(), title="Staff Engineer"),
        # A contractor whose contract ends in two days (HR extends it by a week below) ...
        _event("evt-070", "hire", "E1007", now, given_name="Edsger", family_name="Dijkstra",
               department="Finance", job_code="FIN1", title="Auditor", location="NL-AMS",
               employment_type="contractor", start_date=now.date().isoformat(),
               end_date=(now.date() + timedelta(days=2)).isoformat()),
        # ... and one hired with an end date already past: no access at all.
        _event("evt-080", "hire", "E1008", now, given_name="Frances", family_name="Allen",
               department="Engineering", job_code="ENG1", title="Engineer", location="US-NYC",
               employment_type="contractor", start_date=(now.date() - timedelta(days=90)).isoformat(),
               end_date=(now.date() - timedelta(days=1)).isoformat()),
    ])
    await svc.drain()
    await send(_event("evt-062", "terminate", "E1006", now - timedelta(days=2)))
    await send(_event("evt-071", "update", "E1007", utcnow(),
                      end_date=(now.date() + timedelta(days=9)).isoformat()))
    await svc.drain()
    barbara = sb.user(_remote(svc, "E1006")) or {}
    console.print(f"Barbara's termination (effective 2 days ago, entered now, after a newer update): "
                  f"state {_state(svc, 'E1006')}, account enabled {barbara.get('accountEnabled')}")
    if _remote(svc, "E1008"):
        failures.append("E1008: hired with an end date in the past, yet an Entra account was created")
    steps = preview(svc.db, svc.runtime.ctx, "E1007")
    ending = [s for s in steps if "contract end" in s["after"]]
    console.print(f"Edsger's plan shows his contract end as a pending change: "
                  f"{ending[0]['after'] if ending else 'missing'}")
    if len(ending) != 1 or (now.date() + timedelta(days=9)).isoformat() not in ending[0]["after"]:
        failures.append(f"E1007: plan shows contract ends {[s['after'] for s in ending]}, expected the moved one")

    step("5. rehire: Alan comes back, in Engineering as an employee")
    await send(_event("evt-040", "rehire", "E1003", utcnow(), given_name="Alan", family_name="Turing",
                      department="Engineering", job_code="ENG1", title="Engineer", location="UK-LON",
                      employment_type="employee"))
    await svc.drain()

    step("6. out-of-order delivery: an older update arrives late and does not overwrite")
    await send(_event("evt-050", "update", "E1005", now - timedelta(days=1), title="Old Title"))
    await svc.drain()

    step("7. a policy change, reviewed like code: Finance also edits the wiki; the Berlin office rule goes")
    failures += await _policy_change(svc)

    failures += await report_wiki(svc, console, {
        "E1001": (True, {"Wiki Readers", "Wiki Editors"}), "E1002": (False, set()),
        "E1003": (True, {"Wiki Readers", "Wiki Editors"}), "E1004": (True, {"Wiki Readers", "Wiki Editors"}),
        "E1005": (True, {"Wiki Readers", "Wiki Editors"})})
    expectations = [
        Expectation("E1001", "active", True, {"All Staff", "Employees", "Engineering", "GitHub Users"}),
        Expectation("E1002", "terminated", False, set()),
        Expectation("E1003", "active", True, {"All Staff", "Employees", "Engineering", "GitHub Users"}),
        Expectation("E1004", "active", True, {"All Staff", "Employees", "Finance"}),
        Expectation("E1005", "active", True, {"All Staff", "Employees", "Finance"}),
        Expectation("E1006", "terminated", False, set()),
        Expectation("E1007", "active", True, {"All Staff", "Contractors", "Finance"}),
        Expectation("E1008", "terminated", None, set()),
    ]
    failures += _report(svc, expectations)
    with svc.db.transaction() as session:
        person = identities.by_employee_id(session, "E1005")
        if person is None or person.title != "Controller":
            failures.append("E1005: the late, older update overwrote a newer title")
        if person is None or person.user_name != "ada.lovelace2@example.com":
            failures.append(f"E1005: expected login ada.lovelace2@example.com, got {person and person.user_name}")
        katherine = identities.by_employee_id(session, "E1004")
        k = identities.account(session, katherine.id, "entra") if katherine else None
        if k is None or k.remote_id != existing or not k.linked:
            failures.append("E1004: the existing Entra account was not linked")
        kw = identities.account(session, katherine.id, "wiki") if katherine else None
        if kw is None or kw.remote_id != wiki_existing["id"] or not kw.linked:
            failures.append("E1004: the existing wiki account was not linked")
        records = evidence.revocations(session, now - timedelta(days=3), utcnow() + timedelta(days=1))
        chain = verify_chain(session)
    step("8. revocation evidence (read back from Entra ID and the wiki) and the audit chain")
    table = Table("leaver", "HR termination", "system", "operations", "verified", "time to revoke (s)")
    for rec in records:
        for system in rec["systems"]:
            table.add_row(f"{rec['display_name']} ({rec['employee_id']})", rec["hr_termination_time"],
                          system["target"], str(len(system["operations"])), str(system["verified"]),
                          str(rec["time_to_revoke_seconds"]))
    console.print(table)
    leavers = {r["employee_id"] for r in records}
    if not {"E1002", "E1003", "E1006"} <= leavers:
        failures.append(f"evidence lists leavers {sorted(leavers)}, expected E1002, E1003 and E1006")
    for rec in records:
        if rec["employee_id"] == "E1006":
            console.print(f"Barbara's evidence: HR effective {rec['hr_termination_time']}, received "
                          f"{rec['received_at']}, applied {rec['effective_time']}, verified {rec['all_verified']}")
            if not rec["all_verified"] or rec["hr_termination_time"] >= rec["received_at"]:
                failures.append("E1006: the back-dated termination's evidence is not verified or lost HR's time")
    if not all(r["all_verified"] for r in records if r["employee_id"] == "E1002"):
        failures.append("E1002's revocation was not verified by read-back")
    grace_systems = {s["target"] for r in records if r["employee_id"] == "E1002" for s in r["systems"]}
    if grace_systems != {"entra", "wiki"}:
        failures.append(f"E1002's evidence covers {sorted(grace_systems)}, expected entra and wiki")
    console.print(f"audit chain: {chain.records} records, {'intact' if chain.ok else chain.problems}")
    if not chain.ok:
        failures.append("audit chain broken")
    console.print(f"Graph sandbox: {sb.stats.http_calls} HTTP calls, {sb.stats.writes} writes, "
                  f"{sb.stats.batch_calls} $batch requests")
    console.print_json(json.dumps({"evidence_sample": records[:1]}, default=str)[:4000])

    step("9. 30 days later: the wiki deletes leavers' disabled accounts (deprovision disable_then_delete)")
    clock.advance(timedelta(days=30, minutes=1))
    await svc.drain()
    failures += await report_wiki(svc, console, {"E1002": (None, set()), "E1001": (True, {"Wiki Readers",
                                                                                         "Wiki Editors"})})
    edsger = sb.user(_remote(svc, "E1007")) or {}
    console.print(f"Edsger's contract ended (end_date + 9 days): state {_state(svc, 'E1007')}, "
                  f"account enabled {edsger.get('accountEnabled')}")
    if _state(svc, "E1007") != "terminated" or edsger.get("accountEnabled") is not False:
        failures.append("E1007: the contract end did not end access")
    return failures


async def _policy_change(svc: SandboxedService) -> list[str]:
    """Edit the policy files, reload them into the running service and show the rollout's
    population-wide diff: people gain and lose groups without any HR event."""
    failures: list[str] = []
    directory = Path(svc.settings.policies_dir)
    finance = directory / "finance.yaml"
    finance.write_text(finance.read_text().replace("    groups: [Finance]",
                                                   "    groups: [Finance]\n  wiki:\n    groups: [Wiki Editors]"))
    (directory / "berlin.yaml").unlink()
    result = await svc.runtime.reload_policies("demo")
    await svc.drain()
    if result is None or result.outcome != "applied":
        return [f"the policy change was not rolled out: {result and result.outcome}"]
    with svc.db.read() as session:
        rollout = rollouts.latest(session)
        diff = dict(rollout.diff) if rollout else {}
    console.print(f"policy set {result.previous_fingerprint and result.previous_fingerprint[:12]} -> "
                  f"{result.fingerprint[:12]}: {result.counts.get('people')} of {result.counts.get('population')} "
                  f"people re-planned, {result.counts.get('gains')} gains, {result.counts.get('losses')} losses "
                  f"(audit record policy.rollout)")
    table = Table("target", "group", "gain", "lose")
    for target, groups in sorted(diff.items()):
        for group, change in sorted(groups.items()):
            names = lambda people: ", ".join(p["employee_id"] for p in people)  # noqa: E731
            table.add_row(target, group, f"{change['gain_count']} {names(change['gain'])}",
                          f"{change['lose_count']} {names(change['lose'])}")
    console.print(table)
    gained = {p["employee_id"] for p in diff.get("wiki", {}).get("Wiki Editors", {}).get("gain", [])}
    lost = {p["employee_id"] for p in diff.get("entra", {}).get("Berlin Office", {}).get("lose", [])}
    if gained != {"E1004", "E1005", "E1007"} or lost != {"E1001"}:
        failures.append(f"policy diff: Wiki Editors gained by {sorted(gained)}, Berlin Office lost by {sorted(lost)}")
    return failures


def _state(svc: SandboxedService, employee_id: str) -> str | None:
    with svc.db.read() as session:
        person = identities.by_employee_id(session, employee_id)
        return person.state if person else None


def _remote(svc: SandboxedService, employee_id: str) -> str:
    with svc.db.transaction() as session:
        person = identities.by_employee_id(session, employee_id)
        account = identities.account(session, person.id, "entra") if person else None
        return account.remote_id if account else ""


def _report(svc: SandboxedService, expectations: list[Expectation]) -> list[str]:
    failures = []
    sb = svc.sandbox
    groups = svc.group_ids
    table = Table(title="per person, per system (read from the Graph sandbox)")
    for col in ("employee", "name", "state", "entra account", "entra groups", "check"):
        table.add_column(col)
    with svc.db.transaction() as session:
        for exp in expectations:
            person = identities.by_employee_id(session, exp.employee_id)
            account = identities.account(session, person.id, "entra") if person else None
            user = sb.user(account.remote_id) if account else None
            actual_groups = {name for name, gid in groups.items() if gid and account and
                             account.remote_id in sb.group_member_ids(gid)}
            enabled = user.get("accountEnabled") if user else None
            problems = []
            if person is None or person.state != exp.state:
                problems.append(f"state {person and person.state} != {exp.state}")
            if exp.enabled is not None and enabled != exp.enabled:
                problems.append(f"enabled {enabled} != {exp.enabled}")
            if actual_groups != exp.groups:
                problems.append(f"groups {sorted(actual_groups)} != {sorted(exp.groups)}")
            failures += [f"{exp.employee_id}: {p}" for p in problems]
            table.add_row(exp.employee_id, person.display_name if person else "?", person.state if person else "?",
                          f"{user.get('userPrincipalName') if user else '-'} "
                          f"({'enabled' if enabled else 'disabled' if user else 'none'})",
                          ", ".join(sorted(actual_groups)) or "-",
                          "[green]ok[/]" if not problems else "[red]" + "; ".join(problems) + "[/]")
    console.print(table)
    return failures
