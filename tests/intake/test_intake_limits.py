"""Field limits (provisioner/limits.py): what the API accepts always stores and applies, on
PostgreSQL too (which enforces column lengths); one character more is a 400 naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from provisioner import limits
from provisioner.clock import utcnow
from provisioner.identities import repository as identities
from provisioner.intake import repository
from provisioner.intake.models import HREvent
from tests.support import event, hire


def stored_events(service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HREvent))


def _extra_of_size(total: int) -> dict[str, str]:
    """An extra object whose JSON is exactly ``total`` bytes (values within their own limit)."""
    extra = {f"k{n:02d}": "v" * 900 for n in range(total // 920)}
    size = len(json.dumps(extra, ensure_ascii=False).encode())
    extra["pad"] = ""
    extra["pad"] = "p" * (total - len(json.dumps(extra, ensure_ascii=False).encode()))
    assert len(json.dumps(extra, ensure_ascii=False).encode()) == total and size < total
    return extra


def _person(n: int, text: str) -> str:
    """A non-ASCII text of exactly n characters (PostgreSQL counts characters, not bytes)."""
    return (text * n)[:n]


# case -> (its limit, the field a 400 names)
CASES: dict[str, tuple[int, str]] = {
    "employee_id": (limits.EMPLOYEE_ID, "employee_id"),
    "event_id": (limits.EVENT_ID, "event_id"),
    **{name: (limit, f"attributes.{name}") for name, limit in limits.HR_TEXT.items()},
    "manager_employee_id": (limits.EMPLOYEE_ID, "attributes.manager_employee_id"),
    "extra_key": (limits.EXTRA_KEY, "attributes.extra.{key}.[key]"),
    "extra_value": (limits.EXTRA_VALUE, "attributes.extra.note"),
    "extra_keys": (limits.EXTRA_MAX_KEYS, "attributes.extra"),
    "extra_total": (limits.EXTRA_TOTAL_BYTES, "attributes.extra"),
}


def _hire_with(case: str, n: int) -> tuple[dict[str, Any], str]:
    """A hire carrying the case's field at size n; returns (event, employee_id)."""
    emp = "L-" + case.replace("_", "-")
    body = hire(f"lim-{case}-{n}", emp, "Lim", "It", "Sales")
    attrs = body["attributes"]
    if case == "employee_id":
        emp = body["employee_id"] = "E" + "7" * (n - 1)
    elif case == "event_id":
        body["event_id"] = "ev-" + "9" * (n - 3)
    elif case in limits.HR_TEXT:
        attrs[case] = _person(n, "Ünïcødé ")[:-1] + "x" if n > 1 else "x"
    elif case == "manager_employee_id":
        attrs[case] = "M" + "3" * (n - 1)
    elif case == "extra_key":
        attrs["extra"] = {"k" * n: "v"}
    elif case == "extra_value":
        attrs["extra"] = {"note": _person(n, "ß")}
    elif case == "extra_keys":
        attrs["extra"] = {f"key{i}": i for i in range(n)}
    elif case == "extra_total":
        attrs["extra"] = _extra_of_size(n)
    return body, emp


@pytest.mark.parametrize("case", list(CASES))
async def test_a_value_at_its_limit_is_stored_and_applied(service, case: str):
    limit, _ = CASES[case]
    body, emp = _hire_with(case, limit)
    resp = await service.send(body)
    assert resp.status_code == 202, resp.text
    await service.drain()
    with service.db.transaction() as session:
        stored = repository.get(session, body["event_id"])
        assert stored is not None and stored.status == "applied", (stored and stored.status_reason)
        person = identities.by_employee_id(session, emp)
        assert person is not None and person.state == "active"
        for name, value in body["attributes"].items():
            if name not in ("start_date", "end_date"):
                assert getattr(person, name) == value, name
        assert len(person.display_name) <= limits.DISPLAY_NAME


@pytest.mark.parametrize("case", list(CASES))
async def test_one_more_than_the_limit_is_400_naming_the_field(service, case: str):
    limit, field = CASES[case]
    body, _ = _hire_with(case, limit + 1)
    resp = await service.send([hire("ok-first", "OKF", "Fine", "First", "Sales"), body])
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    expected = "events.1." + field.format(key="k" * (limit + 1))
    assert [e["field"] for e in resp.json()["errors"]] == [expected]
    assert resp.json()["detail"].startswith(expected + ": ")
    assert stored_events(service) == 0  # nor the valid first event: a request is all or nothing


@pytest.mark.parametrize(("where", "value", "field"), [
    ("family_name", "Love\x00lace", "attributes.family_name"),
    ("department", "Sa\x1fles", "attributes.department"),
    ("title", "Chief\u0085Officer", "attributes.title"),  # a C1 control character
    ("extra", {"note": "a\x00b"}, "attributes.extra.note"),
    ("extra", {"no\x00te": "ab"}, "attributes.extra.no\x00te.[key]"),
])
async def test_control_characters_are_refused_naming_the_field(service, where: str, value: Any, field: str):
    body = hire("cc1", "CC1", "Con", "Trol", "Sales")
    body["attributes"][where] = value
    resp = await service.send(body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    [error] = resp.json()["errors"]
    assert error["field"] == field
    assert "control characters are not allowed (U+" in error["message"]
    assert stored_events(service) == 0


async def test_a_lone_surrogate_nan_and_deep_nesting_are_400_not_500(service):
    raw = json.dumps(hire("sur1", "SUR1", "Sur", "Rogate", "Sales")).replace("Rogate", "Ro\\ud800gate").encode()
    resp = await service.api.post("/hr/events", content=raw, headers=service.signed(raw))
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "attributes.family_name"
    raw = json.dumps(hire("nan1", "NAN1", "Not", "Number", "Sales", extra={"x": 1})).replace('"x": 1', '"x": NaN')
    resp = await service.api.post("/hr/events", content=raw.encode(), headers=service.signed(raw.encode()))
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "body", resp.text
    raw = b"[" * 100_000 + b"]" * 100_000
    resp = await service.api.post("/hr/events", content=raw, headers=service.signed(raw))
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["detail"]
    body = hire("obj1", "OBJ1", "Ob", "Ject", "Sales", extra={"nested": {"a": 1}, "big": 2**64})
    resp = await service.send(body)
    assert resp.status_code == 400
    assert {e["field"] for e in resp.json()["errors"]} == {"attributes.extra.nested", "attributes.extra.big"}
    assert stored_events(service) == 0


async def test_a_missing_family_name_is_reported_against_the_field(service):
    events = [hire(f"fn{n}", f"FN{n}", "Fam", f"Ily{n}", "Sales") for n in range(5)]
    del events[3]["attributes"]["family_name"]
    resp = await service.send(events)
    assert resp.status_code == 400
    assert resp.json()["errors"] == [{"field": "events.3.attributes.family_name", "message": "required for a hire"}]
    resp = await service.send(event("fn9", "hire", "FN9", department="Sales"))
    assert [e["field"] for e in resp.json()["errors"]] == ["attributes.given_name", "attributes.family_name"]
    resp = await service.send(event("fn10", "update", "FN10", immediate=True))
    assert [e["field"] for e in resp.json()["errors"]] == ["immediate"]
    resp = await service.send(event("fn11", "cancel", "FN11"))
    assert resp.json()["errors"] == [{"field": "cancels_event_id", "message": "required for a cancel"}]
    assert stored_events(service) == 0


async def test_a_duplicate_event_id_in_a_batch_is_400_naming_both_positions(service):
    first = hire("dup1", "DUP1", "Dup", "Licate", "Sales")
    changed = hire("dup1", "DUP2", "Other", "Person", "Sales")
    for batch in ([first, hire("x1", "X1", "Ex", "Tra", "Sales"), changed],  # a different body: was a 409
                  [first, hire("x1", "X1", "Ex", "Tra", "Sales"), dict(first)]):  # the very same event twice
        resp = await service.send(batch)
        assert resp.status_code == 400, resp.text
        [error] = resp.json()["errors"]
        assert error["field"] == "events.2.event_id"
        assert "'dup1' is also the event_id of events.0" in error["message"]
    assert stored_events(service) == 0


async def test_the_same_person_hired_twice_in_a_batch_is_400_naming_both(service):
    batch = [hire("tw1", "TWICE", "Ada", "Lovelace", "Sales"), hire("other", "OTHER", "Al", "Bo", "Sales"),
             event("tw-t", "terminate", "TWICE"), hire("tw2", "TWICE", "Ada", "Byron", "Finance")]
    resp = await service.send(batch)
    assert resp.status_code == 400
    assert resp.json()["errors"] == [{
        "field": "events.3.employee_id",
        "message": "'TWICE' is hired twice (also at events.0); send one hire per person"}]
    assert stored_events(service) == 0
    # A hire and a terminate of the same person in one batch are fine.
    assert (await service.send(batch[:3])).status_code == 202


async def test_errors_of_a_large_batch_are_capped_with_a_count(service):
    events = [hire(f"cap{n}", f"CAP{n}", "Cap", "", "Sales") for n in range(150)]
    resp = await service.send(events)
    assert resp.status_code == 400
    problem = resp.json()
    assert len(problem["errors"]) == 100 and problem["error_count"] == 150
    assert problem["errors"][99]["field"] == "events.99.attributes.family_name"


async def test_effective_at_outside_the_window_is_400_naming_the_field(service):
    now = utcnow()
    inside = [hire("w1", "W1", "Old", "Enough", "Sales", at=now - timedelta(days=399)),
              hire("w2", "W2", "Far", "Ahead", "Sales", at=now + timedelta(days=729))]
    assert (await service.send(inside)).status_code == 202
    for at, words in ((now - timedelta(days=401), "more than 400 days in the past"),
                      (now + timedelta(days=731), "more than 730 days in the future")):
        resp = await service.send([hire("w3", "W3", "Out", "Side", "Sales", at=at)])
        assert resp.status_code == 400
        [error] = resp.json()["errors"]
        assert error["field"] == "events.0.effective_at" and words in error["message"]
    raw = json.dumps(hire("w4", "W4", "Year", "Max", "Sales")).encode()
    raw = raw.replace(json.dumps(json.loads(raw)["effective_at"]).encode(), b'"9999-12-31T23:59:59-05:00"')
    resp = await service.api.post("/hr/events", content=raw, headers=service.signed(raw))
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "effective_at"
    assert stored_events(service) == 2


async def test_a_150_character_employee_id_among_100_concurrent_requests_fails_alone(service):
    import asyncio

    valid = [service.send(hire(f"cc{n}", f"CC{n}", "Con", f"Current{n}", "Sales")) for n in range(100)]
    poison = service.send(hire("poison", "P" * 150, "Poi", "Son", "Sales"))
    answers = await asyncio.gather(*valid[:50], poison, *valid[50:])
    bad = answers[50]
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "employee_id"
    assert [a.status_code for a in answers[:50] + answers[51:]] == [202] * 100
    assert stored_events(service) == 100
