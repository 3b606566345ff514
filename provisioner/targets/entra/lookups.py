"""Match before create for many people at once: the requests, and reading their answers.

Pure functions, no I/O: the connector sends the planned sub-requests in ``$batch``es of 20.

- People with an employee id are looked up 15 to a sub-request, ``GET /users?$filter=employeeId
  in ('a','b',...)&$select=id,userPrincipalName,employeeId&$top=999``: Graph supports ``in`` on
  employeeId (user resource: "Supports $filter (eq, ne, not, ge, le, in, startsWith ...)"; ``in``
  needs no advanced query) and refuses more than 15 values or ``or``-ed clauses in one filter
  (Request_UnsupportedQuery), as the sandbox does. 300 people per HTTP call.
- Someone without an employee id is looked up by ``userPrincipalName eq '...'`` on their own.
- Graph compares strings case-insensitively: answers are matched back the same way.
- Two accounts holding one employee id: linking either would be a guess (``TargetError``).
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.targets.contract import AccountSpec, Outcome, TargetError
from provisioner.targets.entra import batching
from provisioner.targets.entra.batching import SubRequest

IN_LIMIT = 15  # values in one $filter ``in (...)``: Graph refuses more (Request_UnsupportedQuery)
PAGE = 999  # Graph's largest $top for users: 15 employee ids never fill it unless duplicated
SELECT = "id,userPrincipalName,employeeId"
BY_EMPLOYEE_ID = "employeeId"
BY_LOGIN = "userPrincipalName"


def lookup_requests(specs: Sequence[AccountSpec]) -> list[SubRequest]:
    """The fewest GET sub-requests finding every person's account (reads: dry-run safe)."""
    counter = batching.IdCounter("m")
    subs: list[SubRequest] = []
    ids = list(dict.fromkeys(s.employee_id for s in specs if s.employee_id))
    for start in range(0, len(ids), IN_LIMIT):
        values = ",".join(batching.odata_string(v) for v in ids[start:start + IN_LIMIT])
        query = batching.query_string(
            {"$filter": f"employeeId in ({values})", "$select": SELECT, "$top": str(PAGE)})
        subs.append(SubRequest(counter(), "GET", f"/users?{query}", purpose=BY_EMPLOYEE_ID))
    for login in dict.fromkeys(s.login for s in specs if not s.employee_id and s.login):
        query = batching.query_string(
            {"$filter": f"userPrincipalName eq {batching.odata_string(login)}", "$select": SELECT,
             "$top": "2"})
        subs.append(SubRequest(counter(), "GET", f"/users?{query}", purpose=BY_LOGIN, key=login))
    return subs


def matches(specs: Sequence[AccountSpec], bodies: Sequence[tuple[SubRequest, dict]]
            ) -> dict[str, tuple[str, str | None]]:
    """``(remote id, login)`` by employee id, from the answers to :func:`lookup_requests`."""
    by_value: dict[tuple[str, str], list[dict]] = {}
    for sub, body in bodies:
        if body.get("@odata.nextLink"):
            raise TargetError(Outcome.BAD_REQUEST, f"more than {PAGE} accounts answer one lookup; "
                                                   "refusing to guess")
        for user in body.get("value") or []:
            if not isinstance(user, dict) or not user.get("id"):
                continue
            value = user.get("employeeId") if sub.purpose == BY_EMPLOYEE_ID else sub.key
            if value:
                by_value.setdefault((sub.purpose, str(value).lower()), []).append(user)
    found: dict[str, tuple[str, str | None]] = {}
    for spec in specs:
        prop, value = (BY_EMPLOYEE_ID, spec.employee_id) if spec.employee_id else (BY_LOGIN, spec.login)
        if not value:
            continue
        users = by_value.get((prop, value.lower()), [])
        if len(users) > 1:
            raise TargetError(Outcome.BAD_REQUEST, f"{len(users)} accounts match {prop}; refusing to guess")
        if users:
            found[spec.employee_id] = (str(users[0]["id"]), users[0].get("userPrincipalName"))
    return found
