"""Servers that differ: no PATCH on /Groups (announced or found out), no PATCH at all (GET + PUT
with If-Match), Bulk limits, and the compatibility profile's overrides."""

from __future__ import annotations

import pytest

from tests.support import event, hire
from tests.targets.scim_helpers import WikiView, scim_service


@pytest.fixture
async def make(database_url, tmp_path):
    made = []

    def build(**options):
        svc, log = scim_service(tmp_path / str(len(made)), database_url, **options)
        made.append(svc)
        return svc, log, WikiView(svc)

    yield build
    for svc in made:
        await svc.close()


async def joiner_mover_leaver(svc, wiki, emp: str) -> str:
    await svc.send(hire(f"{emp}-1", emp, "Pat", f"Compat{emp}", "Engineering"))
    await svc.drain()
    assert await wiki.groups(emp) == {"Wiki Readers", "Wiki Editors"}
    rid = wiki.remote_id(emp)
    await svc.send(event(f"{emp}-2", "update", emp, department="Sales"))
    await svc.drain()
    assert await wiki.groups(emp) == {"Wiki Readers"}
    assert (await wiki.user(emp))["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] == "Sales"
    await svc.send(event(f"{emp}-3", "terminate", emp))
    await svc.drain()
    user = await wiki.user(emp)
    assert user["id"] == rid and user["active"] is False
    assert await wiki.groups(emp) == set()
    return rid


async def test_server_refusing_group_patch_is_found_out_and_memberships_go_by_put(make):
    """scim2-server set to answer 501 to PATCH /Groups while announcing PATCH."""
    svc, log, wiki = make(scim_options={"wiki": {"group_patch": False, "bulk": False}})
    await joiner_mover_leaver(svc, wiki, "G1")
    counts = log.counts()
    assert counts[("PUT", "Groups")] >= 3  # the first grant, the removal, the leaver's removal
    # Learned per operation: the first addition is answered 501 (then additions go by PUT), the
    # first removal twice (by filter, by value list; then removals go by PUT); a second worker
    # loop may send its own before it knows.
    assert 3 <= counts[("PATCH", "Groups")] <= 5
    assert counts[("PATCH", "Users")] >= 1  # users are still patched


async def test_server_refusing_group_patch_inside_bulk_is_found_out_too(make):
    svc, log, wiki = make(scim_options={"wiki": {"group_patch": False, "bulk": True}})
    await joiner_mover_leaver(svc, wiki, "G2")
    assert log.counts()[("PUT", "Groups")] >= 3


async def test_profile_group_patch_never_sends_no_group_patch_at_all(make):
    svc, log, wiki = make(scim_options={"wiki": {"group_patch": False, "bulk": False}},
                          scim_overrides={"wiki": {"compatibility": {"group_patch": "never"}}})
    await joiner_mover_leaver(svc, wiki, "G3")
    assert log.counts()[("PATCH", "Groups")] == 0


async def test_server_without_patch_gets_put_with_if_match(make):
    """ServiceProviderConfig says patch.supported=false: users and groups change by GET + PUT,
    each PUT carrying the version just read (RFC 7644 §3.14)."""
    svc, log, wiki = make(scim_options={"wiki": {"patch": False, "bulk": False}})
    await joiner_mover_leaver(svc, wiki, "P1")
    counts = log.counts()
    assert counts[("PATCH", "Users")] == 0 and counts[("PATCH", "Groups")] == 0
    puts = [headers for method, _, headers in log.requests if method == "PUT"]
    assert len(puts) >= 5
    assert all(h.get("If-Match", "").startswith('W/"') for h in puts)


async def test_put_keeps_attributes_the_app_owns(make):
    svc, _, wiki = make(scim_options={"wiki": {"patch": False, "bulk": False}})
    await svc.send(hire("k-1", "K1", "Kim", "Keep", "Engineering"))
    await svc.drain()
    async with svc.scim["wiki"].client() as client:
        rid = wiki.remote_id("K1")
        user = (await client.get(f"/Users/{rid}")).json()
        user["nickName"] = "kimmy"  # set in the app by the person
        user["emails"].append({"value": "kim@home.example", "type": "home"})
        assert (await client.put(f"/Users/{rid}", json=user)).status_code == 200
    await svc.send(event("k-2", "update", "K1", title="Staff Engineer"))
    await svc.drain()
    user = await wiki.user("K1")
    assert user["title"] == "Staff Engineer" and user["nickName"] == "kimmy"
    assert {e["type"] for e in user["emails"]} == {"work", "home"}


async def test_etag_conflict_reads_again_and_wins(make):
    """Someone changes the group between our GET and our PUT: 412, read again, PUT again."""
    svc, log, wiki = make(scim_options={"wiki": {"patch": False, "bulk": False}})
    await svc.send(hire("e-1", "E1", "Eve", "Tag", "Sales"))
    await svc.drain()
    interfered = []

    async def change_group_after_our_read(request):
        if request.method == "PUT" and "/Groups/" in request.url.path and not interfered:
            gid = request.url.path.rsplit("/", 1)[-1]
            async with svc.scim["wiki"].client() as client:
                group = (await client.get(f"/Groups/{gid}")).json()
                group["externalId"] = "edited-elsewhere"  # a real change: the version moves on
                interfered.append((await client.put(f"/Groups/{gid}", json=group)).status_code)

    log.clear()
    log.before = change_group_after_our_read
    await svc.send(event("e-2", "update", "E1", department="Engineering"))
    await svc.drain()
    assert interfered == [200]
    assert await wiki.groups("E1") == {"Wiki Readers", "Wiki Editors"}
    puts = [m for m, p, _ in log.requests if m == "PUT" and p == "Groups"]
    assert len(puts) >= 2  # the refused PUT and the one after reading again


async def test_bulk_requests_respect_max_operations(make):
    svc, log, wiki = make(scim_options={"wiki": {"bulk": True, "max_operations": 5}})
    await svc.send([hire(f"b{n}", f"B{n}", "Bulk", f"Person{n}", "Sales") for n in range(12)])
    await svc.drain()
    for n in range(12):
        assert await wiki.groups(f"B{n}") == {"Wiki Readers"}
    bulks = log.counts()[("POST", "Bulk")]
    assert bulks >= 3 + 1  # 12 creates in Bulk requests of at most 5, then the grant
    assert log.counts()[("POST", "Users")] == 0


async def test_bulk_requests_respect_max_payload_size(make):
    svc, log, wiki = make(scim_options={"wiki": {"bulk": True, "max_payload": 4096}})
    sizes: list[int] = []

    async def measure(request):
        if request.url.path.endswith("/Bulk"):
            sizes.append(len(request.content))

    log.before = measure
    await svc.send([hire(f"s{n}", f"S{n}", "Size", f"Person{n}", "Sales") for n in range(12)])
    await svc.drain()
    assert len(await svc.scim["wiki"].users()) == 12
    assert sum(sizes) > 4096 and len(sizes) >= 3  # the creates alone do not fit in one
    assert max(sizes) <= 4096


async def test_profile_bulk_never_uses_single_requests(make):
    svc, log, wiki = make(scim_overrides={"wiki": {"compatibility": {"bulk": "never"}}})
    await svc.send(hire("n-1", "N1", "No", "Bulk", "Sales"))
    await svc.drain()
    assert await wiki.groups("N1") == {"Wiki Readers"}
    assert log.counts()[("POST", "Bulk")] == 0 and log.counts()[("POST", "Users")] == 1


def test_value_list_member_removal_is_sent_as_entra_id_sends_it():
    """Some servers only understand Entra ID's removal form (path ``members`` with a value
    list); scim2-server follows RFC 7644 §3.5.2.2 and refuses it, so this checks the body."""
    from provisioner.targets.scim.config import ScimTarget
    from provisioner.targets.scim.writes import member_patch

    config = ScimTarget(kind="scim", name="x", base_url="http://x/v2", auth={"method": "none"},
                        compatibility={"remove_member_style": "value_list"})
    body = member_patch(config, [(1, "remove", "u1"), (2, "remove", "u2"), (3, "add", "u3")])
    assert body["Operations"] == [{"op": "add", "path": "members", "value": [{"value": "u3"}]},
                                  {"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]
    config.compatibility.remove_member_style = "filter"
    assert member_patch(config, [(1, "remove", 'a"b')])["Operations"] == [
        {"op": "remove", "path": 'members[value eq "a\\"b"]'}]


async def test_a_value_scim_refuses_is_dead_lettered_alone_before_sending(make):
    """A mapping that yields an invalid work e-mail: scim2-models refuses it before anything is
    sent; that create goes to the dead letter at once with the reason, the others go ahead."""
    from sqlalchemy import select

    from provisioner.queue.models import Operation

    svc, log, wiki = make(scim_overrides={"wiki": {"mapping": {"emails.work": "{job_title}"}}})
    await svc.send([hire("i-1", "I1", "Ivy", "Invalid", "Sales", title="Sales Lead"),
                    hire("i-2", "I2", "Ian", "Valid", "Sales")])  # no title: no work e-mail at all
    await svc.drain()
    with svc.db.transaction() as session:
        creates = {o.identity_id: o for o in session.scalars(select(Operation).where(
            Operation.target == "wiki", Operation.kind == "create_account"))}
    dead = [o for o in creates.values() if o.status == "dead"]
    assert len(dead) == 1 and dead[0].attempts == 1
    assert dead[0].last_error.startswith("bad_request: not a valid SCIM value") and "email" in dead[0].last_error
    assert await wiki.accounts("I1") == []
    assert await wiki.groups("I2") == {"Wiki Readers"}  # the rest of the round went ahead
