"""Apps as they really are: a 2xx is not proof. Each write's effect is confirmed; an operation
whose form the app refuses or ignores climbs its own ladder (member removal: path filter ->
value list -> PUT of the group; user update: PATCH -> GET + PUT), learned per target and kept
across restarts. Through the whole service (HR event -> queue -> worker -> SCIM connector),
with the wiki's scim2-server behind a fault transport that makes it act as such apps do, and
every end state read back over the server's own SCIM API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from provisioner.queue.models import Operation
from provisioner.sandbox.scim.faults import FaultTransport
from provisioner.targets.learned import repository as learned
from tests.support import event, hire
from tests.targets.scim_helpers import WikiView, scim_service

FILTER_REMOVE = "members[value eq"  # the body of a removal by path filter


@pytest.fixture
async def make(database_url, tmp_path):
    made = []

    def build(**options: Any):
        scim = options.pop("scim_options", {"wiki": {"bulk": False}})
        svc, log = scim_service(tmp_path / str(len(made)), database_url, scim_options=scim, **options)
        log.inner = faults = FaultTransport(log.inner)
        made.append(svc)
        return svc, log, faults, WikiView(svc)

    yield build
    for svc in made:
        await svc.close()


def ops_of(svc, kind: str) -> list[Operation]:
    with svc.db.read() as session:
        return list(session.scalars(select(Operation).where(Operation.target == "wiki", Operation.kind == kind)
                                    .order_by(Operation.id)))


def lessons(svc) -> dict[tuple[str, str], str]:
    with svc.db.read() as session:
        return {(r.operation, r.form): r.reason for r in learned.all_forms(session) if r.target == "wiki"}


async def hired_in_engineering(svc, wiki, emp: str) -> str:
    await svc.send(hire(f"{emp}-h", emp, "Lad", f"Der{emp}", "Engineering"))
    await svc.drain()
    assert await wiki.groups(emp) == {"Wiki Readers", "Wiki Editors"}
    return wiki.remote_id(emp)


async def test_removal_answered_200_without_effect_is_not_succeeded_and_the_next_form_fixes_it(make):
    svc, log, faults, wiki = make()
    rid = await hired_in_engineering(svc, wiki, "L1")
    # The app answers 200 to the removal by path filter and changes nothing (twice: the
    # connector looks once more before it learns).
    faults.script("ignore", times=2, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    await svc.send(event("L1-t", "transfer", "L1", department="Sales"))
    await svc.drain()
    assert faults.injected["ignore"] == 2
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")  # read back over SCIM
    assert await wiki.groups("L1") == {"Wiki Readers"}
    [removal] = ops_of(svc, "remove_member")
    # Fixed in the same apply call: value list (refused by scim2-server, RFC 7644 only knows
    # the filter form), then a PUT of the group, confirmed by reading the group.
    assert removal.status == "succeeded" and removal.attempts == 1
    assert log.counts()[("PUT", "Groups")] == 1
    learnt = lessons(svc)
    assert learnt[("member_remove", "filter")].endswith("answered 200 but the member is still listed")
    assert ("member_remove", "value_list") in learnt
    assert not any(op == "member_add" for op, _ in learnt)  # additions were not downgraded


async def test_removal_answered_204_without_effect_is_found_by_reading_the_group(make):
    """No resource in the answer: one read of the group (attributes=members) confirms."""
    svc, log, faults, wiki = make()
    rid = await hired_in_engineering(svc, wiki, "L9")
    faults.script("ignore_204", times=2, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    log.clear()
    await svc.send(event("L9-t", "transfer", "L9", department="Sales"))
    await svc.drain()
    assert faults.injected["ignore_204"] == 2
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")
    [removal] = ops_of(svc, "remove_member")
    assert removal.status == "succeeded" and removal.attempts == 1
    assert log.counts()[("GET", "Groups")] >= 2  # the reads after each 204
    assert lessons(svc)[("member_remove", "filter")].endswith("answered 204 but the member is still listed")


async def test_with_bulk_a_form_without_effect_falls_back_too(make):
    """Inside Bulk the answers carry no resource (scim2-server): confirmed by reading; a
    removal Bulk applies without effect (its filter form ignored) falls back to a PUT."""
    svc, log, faults, wiki = make(scim_options={"wiki": {"bulk": True}})
    rid = await hired_in_engineering(svc, wiki, "LB")
    faults.script("ignore_204", times=2, method="POST", path="/Bulk", contains=FILTER_REMOVE)
    await svc.send(event("LB-t", "transfer", "LB", department="Sales"))
    await svc.drain()
    assert faults.injected["ignore_204"] == 2
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")
    assert await wiki.groups("LB") == {"Wiki Readers"}
    [removal] = ops_of(svc, "remove_member")
    assert removal.status == "succeeded" and removal.attempts == 1
    assert ("member_remove", "filter") in lessons(svc)


async def test_501_on_removal_by_filter_downgrades_only_removal(make):
    svc, log, faults, wiki = make()
    faults.script("501", times=1000, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    rid = await hired_in_engineering(svc, wiki, "L2")
    await svc.send(event("L2-t", "transfer", "L2", department="Sales"))
    await svc.drain()
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")
    assert faults.injected["501"] == 1
    counts = log.counts()
    # Additions still go by PATCH: a second joiner adds by PATCH, no PUT of a group.
    await hired_in_engineering(svc, wiki, "L3")
    after = log.counts()
    assert after[("PUT", "Groups")] == counts[("PUT", "Groups")]
    assert after[("PATCH", "Groups")] >= counts[("PATCH", "Groups")] + 1
    # A second removal goes straight to the form that works (no filter, no value list).
    await svc.send(event("L3-t", "transfer", "L3", department="Sales"))
    await svc.drain()
    assert await wiki.groups("L3") == {"Wiki Readers"}
    assert faults.injected["501"] == 1
    assert log.counts()[("PUT", "Groups")] == after[("PUT", "Groups")] + 1
    assert all(op.status == "succeeded" for op in ops_of(svc, "remove_member"))
    assert set(lessons(svc)) == {("member_remove", "filter"), ("member_remove", "value_list")}


async def test_user_update_refused_501_goes_by_get_and_put(make):
    svc, log, faults, wiki = make()
    await hired_in_engineering(svc, wiki, "L4")
    faults.script("501", times=1000, method="PATCH", path="/Users")
    await svc.send(event("L4-u", "update", "L4", family_name="Renamed"))
    await svc.drain()
    assert (await wiki.user("L4"))["name"]["familyName"] == "Renamed"  # read back over SCIM
    [update] = [op for op in ops_of(svc, "update_account")]
    assert update.status == "succeeded" and update.attempts == 1
    assert log.counts()[("PUT", "Users")] == 1
    assert "Users PATCH replace answered 501" in lessons(svc)[("user_update", "patch")]


async def test_exhausted_ladder_is_dead_lettered_with_what_the_app_did(make):
    """As django-scim2: 501 to the removal by filter, and a group PUT that ignores members."""
    svc, log, faults, wiki = make()
    rid = await hired_in_engineering(svc, wiki, "L5")
    faults.script("501", times=1000, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    faults.script("ignore", times=1000, method="PUT", path="/Groups")
    await svc.send(event("L5-t", "transfer", "L5", department="Sales"))
    await svc.drain()
    assert rid in await svc.scim["wiki"].group_members("Wiki Editors")  # nothing changed in the app
    [removal] = ops_of(svc, "remove_member")
    assert removal.status == "dead" and removal.attempts == 1
    reason = removal.last_error
    assert reason.startswith("bad_request: no form works for this app")
    assert 'Groups PATCH remove members[value eq "…"] answered 501' in reason
    assert "Groups PATCH remove with a value list answered 400" in reason
    assert "PUT of the group answered 200 but the member is still listed" in reason


async def test_learned_forms_survive_a_restart_and_show_in_check_and_metrics(make):
    from provisioner.runtime import Runtime

    svc, log, faults, wiki = make()
    faults.script("501", times=1000, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    await hired_in_engineering(svc, wiki, "L6")
    await svc.send(event("L6-t", "transfer", "L6", department="Sales"))
    await svc.drain()
    assert faults.injected["501"] == 1

    # A restart: a new runtime (new connectors, nothing in memory) on the same database and app.
    svc.runtime = Runtime.load(svc.settings, db=svc.db, transports=svc.transports)
    health = await svc.runtime.connectors["wiki"].check()
    learned_forms = health.capabilities["learned_forms"]
    assert learned_forms["member_remove"]["using"] == "put"
    assert set(learned_forms["member_remove"]["refused"]) == {"filter", "value_list"}
    assert "answered 501" in learned_forms["member_remove"]["refused"]["filter"]["reason"]
    assert learned_forms["member_add"] == {"using": "patch", "refused": {}}
    metrics = await svc.metrics()
    assert 'provisioner_target_form_refused{form="filter",operation="member_remove",target="wiki"} 1.0' in metrics
    rid = await hired_in_engineering(svc, wiki, "L7")
    puts = log.counts()[("PUT", "Groups")]
    await svc.send(event("L7-t", "transfer", "L7", department="Sales"))
    await svc.drain()
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")
    assert faults.injected["501"] == 1  # the refused form was not tried again after the restart
    assert log.counts()[("PUT", "Groups")] == puts + 1


async def test_patch_never_for_users_still_patches_groups(make):
    svc, log, faults, wiki = make(scim_overrides={"wiki": {"compatibility": {"patch": "never"}}})
    rid = await hired_in_engineering(svc, wiki, "L8")
    await svc.send(event("L8-t", "transfer", "L8", department="Sales", family_name="Moved"))
    await svc.drain()
    assert rid not in await svc.scim["wiki"].group_members("Wiki Editors")
    assert (await wiki.user("L8"))["name"]["familyName"] == "Moved"
    counts = log.counts()
    assert counts[("PATCH", "Groups")] >= 2 and counts[("PUT", "Groups")] == 0
    assert counts[("PATCH", "Users")] == 0 and counts[("PUT", "Users")] >= 1


async def test_targets_check_cli_shows_learned_forms(make, tmp_path, monkeypatch):
    """`provisioner targets check` (table and --json) against the wiki served on loopback."""
    import asyncio
    import json

    import yaml
    from typer.testing import CliRunner

    from provisioner.cli.main import app
    from provisioner.sandbox.scim.app import serve_in_thread
    from provisioner.settings import get_settings

    svc, log, faults, wiki = make()
    faults.script("501", times=1000, method="PATCH", path="/Groups", contains=FILTER_REMOVE)
    await hired_in_engineering(svc, wiki, "LC")
    await svc.send(event("LC-t", "transfer", "LC", department="Sales"))
    await svc.drain()
    url, server = serve_in_thread(svc.scim["wiki"])
    try:
        folder, policies = tmp_path / "cli-targets", tmp_path / "cli-policies"
        folder.mkdir()
        policies.mkdir()
        for path in svc.settings.targets_dir.glob("*.y*ml"):
            data = yaml.safe_load(path.read_text())
            if data.get("kind") == "scim" and data.get("name") == "wiki":
                data["base_url"] = url
                (folder / path.name).write_text(yaml.safe_dump(data))
        monkeypatch.setenv("PROVISIONER_DATABASE_URL", svc.settings.database_url)
        monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(policies))
        monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(folder))
        get_settings.cache_clear()
        runner = CliRunner()
        result = await asyncio.to_thread(runner.invoke, app, ["targets", "check", "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        [wiki_health] = json.loads(result.output)
        forms = wiki_health["capabilities"]["learned_forms"]
        assert forms["member_remove"]["using"] == "put"
        assert set(forms["member_remove"]["refused"]) == {"filter", "value_list"}
        table = await asyncio.to_thread(runner.invoke, app, ["targets", "check"], catch_exceptions=False)
        assert "member_remove: put (refused: filter, value_list)" in " ".join(table.output.split())
        forgot = await asyncio.to_thread(runner.invoke, app, ["targets", "forget", "wiki"], catch_exceptions=False)
        assert "forgot 2 learned form(s) of wiki" in forgot.output
        assert lessons(svc) == {}
    finally:
        server.should_exit = True
        get_settings.cache_clear()
