"""The SCIM connector's reads: match before create, read-backs, who accounts are, group ids
by name (RFC 7644 §3.4). Mixed into :class:`~provisioner.targets.scim.connector.ScimConnector`,
whose ``send``, ``read`` and ``capabilities`` they use; they never write, except creating a
missing managed group (``resolve_groups``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from provisioner.targets.contract import AccountInfo, AccountSpec, AccountState, Outcome, TargetError
from provisioner.targets.scim.errors import answer_of
from provisioner.targets.scim.listing import Listings, page_size
from provisioner.targets.scim.mapping import render
from provisioner.targets.scim.memberships import MANAGED_ONLY, USER_GROUPS, groups_of_user
from provisioner.targets.scim.writes import filter_string, seg

if TYPE_CHECKING:
    from provisioner.targets.scim.capabilities import Capabilities
    from provisioner.targets.scim.config import ScimTarget
    from provisioner.targets.scim.http import Reply
    from provisioner.targets.scim.memberships import GroupMemberships


class ScimReads:
    """Reads of a SCIM app (the connector's half that never changes anything)."""

    config: ScimTarget
    name: str
    mapping: Any
    memberships: GroupMemberships
    dry_run: bool

    async def send(self, method: str, path: str, *, writes_: int = 0, **kwargs: Any) -> Reply:
        raise NotImplementedError

    async def read(self, path: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def capabilities(self, *, refresh: bool = False) -> Capabilities:
        raise NotImplementedError

    async def search(self, resource: str, filter_: str, attributes: str, count: int) -> list[dict[str, Any]]:
        """Every resource matching a filter (RFC 7644 §3.4.2), following ``startIndex`` pages."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            body = await self.read(resource, {"filter": filter_, "attributes": attributes,
                                              "startIndex": start, "count": count})
            page = [r for r in body.get("Resources") or [] if isinstance(r, dict)]
            found.extend(page)
            total = int(body.get("totalResults") or 0)
            start += len(page)
            if not page or start > total:
                return found

    @property
    def listings(self) -> Listings:
        """Listings cache and what was learned about this app's filters (:mod:`listing`)."""
        found = getattr(self, "_listings", None)
        if found is None:
            found = self._listings = Listings()
        return found

    async def find_accounts(self, specs: Sequence[AccountSpec]) -> dict[str, tuple[str, str | None]]:
        """Match before create, for many people at once: one filter per ``lookups_per_request``
        people, OR-ing an ``eq`` term (RFC 7644 §3.4.2.2) per person and attribute of
        ``compatibility.match_attributes``; a person's account is the one found by the first
        attribute in that order (userName compared case-insensitively, RFC 7643 §4.1.1).

        An account found by userName whose externalId names someone else is not linked. Two
        accounts for one person are not linked either: picking one would be a guess.

        Without trustworthy filters (:mod:`listing`), the users are listed and matched here;
        people a filter did not find are confirmed by a listing once in a while.
        """
        attributes = self.config.compatibility.match_attributes
        values = {s.employee_id: render(self.mapping, s) for s in specs}
        people = [eid for eid, v in values.items() if any(v.get(a) for a in attributes)]
        per = self.config.compatibility.lookups_per_request
        caps = await self.capabilities()
        listings = self.listings
        if not people:
            return {}
        if not caps.filter or not all(listings.trusted("Users", a) for a in attributes):
            return _match_people(people, values, attributes, await self._user_listing())

        async def lookup(chunk: list[str]) -> dict[str, tuple[str, str | None]]:
            terms = sorted({f"{a} eq {filter_string(values[eid][a])}" for eid in chunk for a in attributes
                            if values[eid].get(a)})
            rows = await self.search("Users", " or ".join(terms), "id,userName,externalId",
                                     min(caps.max_results, max(2 * len(terms), 10)))
            return _match_people(chunk, values, attributes, rows)

        try:
            parts = await asyncio.gather(*(lookup(people[i:i + per]) for i in range(0, len(people), per)))
        except TargetError as exc:
            if exc.outcome != Outcome.BAD_REQUEST:  # 400 invalidFilter, 501: the filter is refused
                raise
            for a in attributes:
                listings.confirmed("Users", a, filter_missed=True)
            return _match_people(people, values, attributes, await self._user_listing())
        found = {eid: match for part in parts for eid, match in part.items()}
        missed = [eid for eid in people if eid not in found]
        if missed and any(listings.should_confirm("Users", a) for a in attributes):
            rows = await self._user_listing()
            listed = _match_people(missed, values, attributes, rows)
            by_id = {str(r.get("id")): r for r in rows}
            wrong = {a for eid, (rid, _) in listed.items() for a in attributes
                     if _same(a, by_id.get(rid, {}).get(a), values[eid].get(a))}
            for a in attributes:
                listings.confirmed("Users", a, filter_missed=a in wrong)
            found.update(listed)
        return found

    async def _user_listing(self) -> list[dict[str, Any]]:
        caps = await self.capabilities()
        return await self.listings.rows(self.read, "Users", "id,userName,externalId", page_size(caps.max_results))

    async def find_account(self, spec: AccountSpec) -> tuple[str, str | None] | None:
        return (await self.find_accounts([spec])).get(spec.employee_id)

    async def read_account(self, remote_id: str, group_ids: Sequence[str]) -> AccountState:
        return (await self.read_accounts([remote_id], group_ids))[remote_id]

    async def read_accounts(self, remote_ids: Sequence[str], group_ids: Sequence[str], *,
                            all_groups: bool = False) -> dict[str, AccountState]:
        """Each account (GET /Users/{id}) and which of ``group_ids`` hold it as a member
        (one GET /Groups/{id}?attributes=members per group, shared by all accounts). With
        ``all_groups``, every direct group too (see :mod:`memberships`: ``User.groups``, else a
        ``members.value`` filter on /Groups, else only the managed groups, said in ``groups_source``)."""
        ids = list(dict.fromkeys(remote_ids))
        states = {rid: AccountState(remote_id=rid, exists=False, enabled=None, group_ids=set()) for rid in ids}
        attributes = "id,userName,active" + (",groups" if all_groups else "")

        async def user(rid: str) -> None:
            reply = await self.send("GET", f"Users/{seg(rid)}", params={"attributes": attributes})
            answer = answer_of(reply)
            if answer.outcome == Outcome.NOT_FOUND:
                return
            if answer.outcome != Outcome.DONE:
                raise answer.error()
            body = reply.body if isinstance(reply.body, dict) else {}
            active = body.get("active")
            states[rid].exists = True
            states[rid].enabled = True if active is None else active in (True, "true", "True")
            states[rid].raw = body
            if not all_groups:
                return
            listed = groups_of_user(body)
            source = USER_GROUPS
            if listed is None:
                read = await self.memberships.by_filter(rid)
                listed, source = read if read is not None else (None, MANAGED_ONLY)
            states[rid].all_groups, states[rid].groups_source = listed, source

        async def isolated(rid: str) -> None:
            # A read-back reads each leaver on its own requests: one failing (a 500, a dropped
            # connection) is retried alone, never failing the others' read-backs with it.
            try:
                await user(rid)
            except TargetError as exc:
                if not all_groups:
                    raise
                states[rid] = AccountState(remote_id=rid, exists=False, enabled=None, group_ids=set(), error=exc)

        members = await asyncio.gather(*(self.group_member_ids(g, missing_ok=True) for g in group_ids),
                                       *(isolated(rid) for rid in ids))
        for group_id, holders in zip(group_ids, members[:len(group_ids)], strict=True):
            for rid in ids:
                if rid in holders and states[rid].exists:
                    states[rid].group_ids.add(group_id)
        for state in states.values():
            if all_groups and not state.exists and state.error is None:
                state.all_groups, state.groups_source = {}, "account absent"
            elif state.all_groups is not None:
                # The managed groups read one by one are authoritative; a listing that missed one
                # (a stale User.groups) still shows it.
                state.all_groups.update({g: state.all_groups.get(g, "") for g in state.group_ids})
        return states

    async def describe_accounts(self, remote_ids: Sequence[str]) -> dict[str, AccountInfo]:
        """Who the accounts are: ``id eq`` terms OR-ed, ``lookups_per_request`` to a filter
        (RFC 7644 §3.4.2.2); a server without filters, or refusing a filter on ``id``, is asked
        ``GET /Users/{id}`` per account. Absent ids (and groups among a group's members) are left out."""
        ids = list(dict.fromkeys(remote_ids))
        caps = await self.capabilities()
        per = self.config.compatibility.lookups_per_request
        attributes = "id,userName,displayName,name,externalId,active"

        async def one(rid: str) -> list[dict[str, Any]]:
            reply = await self.send("GET", f"Users/{seg(rid)}", params={"attributes": attributes})
            answer = answer_of(reply)
            if answer.outcome == Outcome.NOT_FOUND:
                return []
            if answer.outcome != Outcome.DONE:
                raise answer.error()
            return [reply.body] if isinstance(reply.body, dict) else []

        async def chunk(part: list[str]) -> list[dict[str, Any]]:
            if caps.filter:
                try:
                    return await self.search("Users", " or ".join(f"id eq {filter_string(i)}" for i in part),
                                             attributes, min(caps.max_results, max(len(part), 10)))
                except TargetError as exc:
                    if exc.outcome != Outcome.BAD_REQUEST:
                        raise
            return [row for rows in await asyncio.gather(*(one(i) for i in part)) for row in rows]

        parts = await asyncio.gather(*(chunk(ids[i:i + per]) for i in range(0, len(ids), per)))
        found: dict[str, AccountInfo] = {}
        wanted = set(ids)
        for row in (r for part in parts for r in part):
            rid = str(row.get("id") or "")
            if rid not in wanted:
                continue
            name = row.get("name") if isinstance(row.get("name"), dict) else {}
            display = row.get("displayName") or name.get("formatted") or " ".join(
                p for p in (name.get("givenName"), name.get("familyName")) if p) or None
            active = row.get("active")
            found[rid] = AccountInfo(rid, row.get("userName"), display, row.get("externalId"),
                                     True if active is None else active in (True, "true", "True"))
        return found

    async def group_member_ids(self, group_id: str, *, missing_ok: bool = False) -> set[str]:
        reply = await self.send("GET", f"Groups/{seg(group_id)}", params={"attributes": "members"})
        answer = answer_of(reply)
        if answer.outcome == Outcome.NOT_FOUND and missing_ok:
            return set()
        if answer.outcome != Outcome.DONE:
            raise answer.error()
        body = reply.body if isinstance(reply.body, dict) else {}
        return {str(m["value"]) for m in body.get("members") or [] if isinstance(m, dict) and m.get("value")}

    async def resolve_groups(self, keys: Sequence[str]) -> dict[str, str]:
        """Group names to ids by ``displayName eq`` (RFC 7643 §4.2); with
        ``create_missing_groups`` a missing managed group is created (never in a dry run)."""
        names = list(dict.fromkeys(keys))
        resolved = await self.groups_by_name(names)
        managed = set(self.config.managed_group_names())
        missing = [n for n in names if n not in resolved and n in managed]
        if not missing or not self.config.create_missing_groups or self.dry_run:
            return resolved
        # Callers resolve one at a time per target, across processes too
        # (provisioner.queue.group_ids), so a group found missing here is created once.
        for name in missing:
            if (created := await self._create_group(name)) is not None:
                resolved[name] = created
        return resolved

    async def _create_group(self, name: str) -> str | None:
        reply = await self.send("POST", "Groups", writes_=1,
                                json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                      "displayName": name})
        answer = answer_of(reply)
        self.listings.invalidate("Groups")
        if answer.outcome == Outcome.DONE and isinstance(reply.body, dict) and reply.body.get("id"):
            return str(reply.body["id"])
        if answer.outcome == Outcome.EXISTS:  # created meanwhile by someone else (another process)
            # The filter that said "missing" may be what cannot see it: look in a listing too.
            found = (await self.groups_by_name([name])).get(name)
            if found is None:
                found = (await self._groups_listed([name], fresh=True)).get(name)
                if found is not None:
                    self.listings.confirmed("Groups", "displayName", filter_missed=True)
            return found
        raise answer.error(f"creating group {name!r}: {answer.detail}")

    async def groups_by_name(self, names: Sequence[str]) -> dict[str, str]:
        """Existing groups by displayName (OR-ed filters); a name held twice is refused. Without
        trustworthy filters (:mod:`listing`) the groups are listed and matched here; names a
        filter did not find are confirmed by a listing once in a while."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        caps = await self.capabilities()
        listings = self.listings
        if not caps.filter or not listings.trusted("Groups", "displayName"):
            return await self._groups_listed(names)
        resolved: dict[str, str] = {}
        per = self.config.compatibility.lookups_per_request
        try:
            for start in range(0, len(names), per):
                chunk = list(names[start:start + per])
                expr = " or ".join(f"displayName eq {filter_string(n)}" for n in chunk)
                rows = await self.search("Groups", expr, "id,displayName", max(2 * len(chunk), 10))
                resolved.update(_match_groups(chunk, rows, self.name))
        except TargetError as exc:
            if exc.outcome != Outcome.BAD_REQUEST:
                raise
            listings.confirmed("Groups", "displayName", filter_missed=True)
            return await self._groups_listed(names)
        missed = [n for n in names if n not in resolved]
        if missed and listings.should_confirm("Groups", "displayName"):
            listed = await self._groups_listed(missed)
            listings.confirmed("Groups", "displayName", filter_missed=bool(listed))
            resolved.update(listed)
        return resolved

    async def _groups_listed(self, names: Sequence[str], *, fresh: bool = False) -> dict[str, str]:
        caps = await self.capabilities()
        rows = await self.listings.rows(self.read, "Groups", "id,displayName", page_size(caps.max_results),
                                        fresh=fresh)
        return _match_groups(list(names), rows, self.name)


def _same(attribute: str, theirs: Any, mine: Any) -> bool:
    if not theirs or not mine:
        return False
    return str(theirs).lower() == str(mine).lower() if attribute == "userName" else str(theirs) == str(mine)


def _match_people(chunk: Sequence[str], values: dict[str, dict[str, Any]], attributes: Sequence[str],
                  rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Each person's account among ``rows``: the one found by the first attribute in order
    (userName case-insensitively), never one whose externalId names someone else, never a
    pick between two."""
    index: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        for a in attributes:
            if row.get(a):
                key = str(row[a]).lower() if a == "userName" else str(row[a])
                index.setdefault((a, key), []).append(row)
    found: dict[str, tuple[str, str | None]] = {}
    for eid in chunk:
        mine = values[eid]
        for a in attributes:
            if not mine.get(a):
                continue
            hits = index.get((a, str(mine[a]).lower() if a == "userName" else str(mine[a])), [])
            hits = [h for h in hits if not h.get("externalId") or h.get("externalId") == mine.get("externalId")]
            if len(hits) == 1 and hits[0].get("id"):
                found[eid] = (str(hits[0]["id"]), hits[0].get("userName"))
                break
    return found


def _match_groups(names: Sequence[str], rows: Sequence[dict[str, Any]], target: str) -> dict[str, str]:
    """Group ids by displayName (case-insensitive); a name held by two groups is refused."""
    wanted = {n.lower(): n for n in names}
    resolved: dict[str, str] = {}
    for row in rows:
        name = wanted.get(str(row.get("displayName", "")).lower())
        if name is None or not row.get("id"):
            continue
        if name in resolved and resolved[name] != str(row["id"]):
            raise TargetError(Outcome.BAD_REQUEST,
                              f"two groups are named {name!r} in {target}; give the id in the target file")
        resolved[name] = str(row["id"])
    return resolved
