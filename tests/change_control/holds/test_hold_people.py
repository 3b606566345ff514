"""Deciding a held mass change person by person (the HTTP API, and the console's form): the
ticked people's held work (disable, sessions, read-back together) is released or cancelled and
moves to a hold set of its own; the others stay held until decided. Read back from the Graph
sandbox and the wiki."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from provisioner.identities.models import Identity
from provisioner.planner.service import plan_identity
from provisioner.queue.models import Operation, OpStatus
from tests.change_control.holds.conftest import audit
from tests.change_control.holds.test_holds import PEOPLE, enabled, provision
from tests.support import event

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _held(svc, tokens) -> dict[str, dict]:
    await provision(svc)
    await svc.send([event(f"t-{e}", "terminate", e) for e in ("P6", "P7", "P8", "P9")])  # 40%: held
    await svc.drain()
    reply = await svc.api.get("/change-control/holds", params={"status": "held"}, headers=tokens["viewer"])
    return {h["target"]: h for h in reply.json()}


async def test_an_approver_releases_some_people_of_a_hold_and_cancels_others(svc, tokens, cli):
    holds = await _held(svc, tokens)
    entra = holds["entra"]["id"]
    assert holds["entra"]["held_people"] == 4
    go = await svc.api.post(f"/change-control/holds/{entra}/release", headers=tokens["approver"],
                            json={"employee_ids": ["P9"], "comment": "confirmed leaver"})
    assert go.status_code == 200, go.text
    part = go.json()["hold"]
    assert (part["status"], part["id"] != entra, go.json()["people"]) == ("released", True, ["P9"])
    await svc.drain()
    state = await enabled(svc, PEOPLE)
    assert state["P9"] == (False, True)  # disabled in entra; the wiki's set still holds P9 there
    assert all(state[e] == (True, True) for e in ("P6", "P7", "P8"))
    still = (await svc.api.get(f"/change-control/holds/{entra}", headers=tokens["viewer"])).json()
    assert (still["status"], still["held_people"]) == ("held", 3)

    # A re-plan of the released person by something else does not put them back into the open set.
    with svc.db.transaction() as session:
        person = session.scalar(select(Identity).where(Identity.employee_id == "P9"))
        plan_identity(session, svc.runtime.ctx, person, trigger="worker:converge", previous_state=person.state)
    await svc.drain()
    with svc.db.read() as session:
        assert not session.scalars(select(Operation).where(Operation.identity_id == person.id,
                                                           Operation.target == "entra",
                                                           Operation.status == OpStatus.HELD)).all()

    unknown = await svc.api.post(f"/change-control/holds/{entra}/cancel", headers=tokens["approver"],
                                 json={"employee_ids": ["P1"]})
    assert unknown.status_code == 404 and "P1" in unknown.json()["detail"]
    refused = await svc.api.post(f"/change-control/holds/{entra}/cancel", headers=tokens["viewer"],
                                 json={"employee_ids": ["P8"]})
    assert refused.status_code == 403

    # The console: the approver ticks P8 and cancels for them.
    with svc.db.transaction() as session:
        from provisioner.tokens.service import create_token
        token = create_token(session, "console-approver", {"approver"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://localhost",
                                 follow_redirects=True) as console:
        form = await console.get("/console/sign-in")
        signed = await console.post("/console/sign-in", data={"token": token,
                                                               "csrf_token": CSRF.search(form.text).group(1)})
        page = await console.get("/console/holds")
        section = page.text.split(f'<h2 id="hold-{entra}">', 1)[1].split("</section>", 1)[0]
        assert f'name="people" value="P8" id="hold-{entra}-op-' in section
        assert 'value="P9"' not in section  # no longer held in entra
        done = await console.post(f"/console/holds/{entra}/people/decide", data={
            "csrf_token": CSRF.search(signed.text).group(1), "people": "P8", "decision": "cancel",
            "comment": "HR withdrew it"})
    assert done.status_code == 200 and f"hold set {entra}: cancelled for 1 person(s)" in done.text
    await svc.drain()
    # The CLI, naming everyone still held: the set itself is released.
    rest = cli("holds", "release", str(entra), "--person", "P6", "--person", "P7", "--comment", "the rest")
    assert rest.exit_code == 0 and f"hold set {entra} released" in rest.output, rest.output
    assert cli("holds", "cancel", str(entra), "--person", "P6").exit_code == 2  # decided already
    await svc.drain()
    state = await enabled(svc, PEOPLE)
    assert [state[e][0] for e in ("P6", "P7", "P8", "P9")] == [False, False, True, False]
    kinds = [(r["kind"], r.get("people"), r.get("part_of")) for r in audit(svc, "hold.") if r.get("target") == "entra"]
    assert kinds[-3:] == [("hold.released", ["P9"], entra), ("hold.cancelled", ["P8"], entra),
                          ("hold.released", ["P6", "P7"], None)]
