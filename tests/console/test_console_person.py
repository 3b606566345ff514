"""A person's page: each account with its last read-back (when, verified or not) and each group
with why the person has it (the policies granting it, who approved it) or that it awaits approval,
from the change-control requests and the running policies; read over HTTP through the app."""

from __future__ import annotations

import re

from tests.console.conftest import bearer
from tests.support import event, hire


def _account_row(html: str, target: str) -> str:
    table = html.split("<caption>Accounts per target</caption>", 1)[1].split("</table>", 1)[0]
    [row] = [r for r in table.split("<tr>") if f'<th scope="row">{target}</th>' in r]
    return re.sub(r"\s+", " ", row)


async def test_groups_say_who_granted_them_or_that_they_await_approval(cc, tokens, console):
    await cc.send(hire("h-f1", "F1", "Fay", "Ledger", "Finance"))
    await cc.drain()
    c = console()
    await c.sign_in(bearer(tokens["look"]))
    before = _account_row((await c.get("/console/people/F1")).text, "entra")
    assert "Finance <span class=\"hint\">(awaiting approval (policies finance))</span>" in before
    assert re.search(r"All Staff <span class=\"hint\">\(granted by [a-z-]+", before), before
    assert "none yet" in before  # an active account has had no read-back

    [request] = (await cc.api.get("/approvals", headers=tokens["alice"])).json()["requests"]
    decided = await cc.api.post(f"/approvals/{request['id']}/approve", headers=tokens["alice"],
                                json={"comment": "finance analyst"})
    assert decided.status_code == 200, decided.text
    await cc.drain()
    after = _account_row((await c.get("/console/people/F1")).text, "entra")
    assert "awaiting approval" not in after
    assert re.search(r"Finance <span class=\"hint\">\(granted by finance, approved by token:alice\)</span>", after), after


async def test_a_leavers_accounts_show_their_last_read_back(cc, tokens, console):
    await cc.send(hire("h-l1", "L1", "Leo", "Leaver", "Sales"))
    await cc.drain()
    await cc.send(event("t-l1", "terminate", "L1", immediate=True))
    await cc.drain()
    c = console()
    await c.sign_in(bearer(tokens["look"]))
    page = (await c.get("/console/people/L1")).text
    for target in ("entra", "wiki"):
        row = _account_row(page, target)
        assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: <span class=\"ok\">verified</span></td>", row), row
