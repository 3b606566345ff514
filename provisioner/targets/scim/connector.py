"""The SCIM 2.0 connector: one app's SCIM server as a target (RFC 7643, RFC 7644).

It reads the server's ServiceProviderConfig and adapts: Bulk when offered, PATCH for
memberships (many members per operation), GET + PUT with ``If-Match`` where PATCH is not
offered, filters for lookups. Answers become outcomes in one place (:mod:`errors`); the
connector never retries, the queue does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import httpx

from provisioner.targets import lanes
from provisioner.targets.contract import (
    AccountInfo,
    AccountSpec,
    AccountState,
    OpResult,
    Outcome,
    TargetError,
    TargetHealth,
    TargetOp,
)
from provisioner.targets.pacer import WritePacer
from provisioner.targets.scim import capabilities as caps_mod
from provisioner.targets.scim import errors, writes
from provisioner.targets.scim.capabilities import Capabilities
from provisioner.targets.scim.config import ScimTarget
from provisioner.targets.scim.errors import Answer, answer_of, result_of
from provisioner.targets.scim.http import Reply, ScimHttp
from provisioner.targets.scim.mapping import render
from provisioner.targets.scim.memberships import (
    GROUPS_FILTER,
    MANAGED_ONLY,
    USER_GROUPS,
    GroupMemberships,
    groups_of_user,
)
from provisioner.targets.scim.updates import FallbackUpdates
from provisioner.targets.scim.writes import Call, filter_string, seg
from provisioner.targets.transport import RecordingTransport

CAPABILITIES_TTL = 300.0  # seconds a ServiceProviderConfig read is trusted
MAX_HOLD_SECONDS = 5.0  # a longer Retry-After is waited out in the queue, not in the worker


class ScimConnector:
    """``Connector`` for an app's SCIM 2.0 server."""

    kind = "scim"

    def __init__(self, config: ScimTarget, http: ScimHttp) -> None:
        self.config = config
        self.name = config.name
        self.http = http
        self.mapping = config.effective_mapping()
        self.pacer = WritePacer(config.throttle.writes_per_second, config.throttle.burst)
        self._slots = lanes.Slots(config.throttle.concurrency)  # one kept for revocation (lanes)
        self._caps: Capabilities | None = None
        self._caps_at = 0.0
        self._group_patch_refused = False  # learnt from a 501 (see ``apply``)
        # Bulk group commit, one per lane: a leaver's calls never wait in (or share) joiner Bulk requests.
        self._bulk_waiting: dict[bool, list[tuple[list[Call], dict[int, OpResult], asyncio.Future[None]]]] = {
            False: [], True: []}
        self._bulk_running: set[bool] = set()
        self.updates = FallbackUpdates(self)
        self.memberships = GroupMemberships(self)

    @classmethod
    def create(cls, config: ScimTarget, *, transport: httpx.AsyncBaseTransport | None = None,
               dry_run: bool = False) -> ScimConnector:
        return cls(config, ScimHttp(config, transport=transport, dry_run=dry_run))

    @property
    def recorder(self) -> RecordingTransport:
        return self.http.recorder

    @property
    def dry_run(self) -> bool:
        return self.http.dry_run

    # ---- plumbing ---------------------------------------------------------------------------

    async def send(self, method: str, path: str, *, writes_: int = 0, **kwargs: Any) -> Reply:
        held = self.pacer.held_for() if writes_ else 0.0
        if held > MAX_HOLD_SECONDS:
            # The app asked for a long pause (Retry-After): hand the operations back to the
            # queue to wait there, rather than holding the worker's round for that long.
            return Reply(429, {"detail": f"{self.name} asked to wait {held:.0f} s (Retry-After)"},
                         httpx.Headers({"Retry-After": f"{held:.3f}"}))
        async with self._slots.hold():
            if writes_:
                await self.pacer.acquire(writes_, urgent=lanes.urgent())
            reply = await self.http.send(method, path, **kwargs)
        if reply.status == 429 and writes_:
            wait = errors.retry_after(reply.headers)
            if wait:
                self.pacer.hold(wait)
        return reply

    async def read(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET that must succeed; any failure raises ``TargetError`` with its outcome."""
        reply = await self.send("GET", path, params=params)
        answer = answer_of(reply)
        if answer.outcome != Outcome.DONE:
            raise answer.error()
        return reply.body if isinstance(reply.body, dict) else {}

    async def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """The server's ServiceProviderConfig (RFC 7643 §5) with the compatibility profile."""
        if refresh or self._caps is None or time.monotonic() - self._caps_at > CAPABILITIES_TTL:
            body = await self.read("ServiceProviderConfig")
            self._caps = caps_mod.from_config(body, self.config.compatibility)
            self._caps_at = time.monotonic()
        if self._group_patch_refused and self._caps.group_patch:
            self._caps = dataclasses.replace(self._caps, group_patch=False)
        return self._caps

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

    # ---- writes -----------------------------------------------------------------------------

    async def apply(self, ops: Sequence[TargetOp]) -> list[OpResult]:
        if not ops:
            return []
        caps = await self.capabilities()
        plan = writes.plan_writes(self.config, caps, ops, self.mapping)
        results: dict[int, OpResult] = {r.op_id: r for r in plan.results}
        first = [c for c in plan.calls if not c.last]
        last = [c for c in plan.calls if c.last]
        if caps.bulk and plan.calls:
            await self._send_bulk(plan.calls, caps, results)
        else:
            await asyncio.gather(*(self._send_one(c, results) for c in first))
        fallbacks = [self.updates.put_user(w) for w in plan.user_puts]
        fallbacks += [self.updates.put_group(g, m) for g, m in plan.group_puts.items()]
        for part in await asyncio.gather(*fallbacks):
            results.update({r.op_id: r for r in part})
        refused = [c for c in plan.calls if c.purpose == "group" and results.get(c.op_ids[0]) is not None
                   and results[c.op_ids[0]].status_code == 501]
        if refused:
            # The server announces PATCH but refuses it on /Groups (RFC 7644 §3.12: 501): from
            # now on memberships go by GET + PUT of the group, starting with these.
            self._group_patch_refused = True
            by_group: dict[str, list[tuple[int, str, str]]] = {}
            for call in refused:
                by_group.setdefault(call.group_id or "", []).extend(call.members)
            for part in await asyncio.gather(*(self.updates.put_group(g, m) for g, m in by_group.items())):
                results.update({r.op_id: r for r in part})
        if last and not caps.bulk:
            await asyncio.gather(*(self._send_one(c, results) for c in last))
        retry = [c for c in plan.calls if c.purpose == "group" and len(c.members) > 1
                 and results.get(c.op_ids[0]) is not None
                 and results[c.op_ids[0]].outcome in (Outcome.BAD_REQUEST, Outcome.NOT_FOUND)]
        if retry:
            # A multi-member PATCH is all or nothing: one bad member fails it. Send each member
            # on its own so every operation gets its own outcome.
            singles = [writes.Call("PATCH", c.path, writes.member_patch(self.config, [m]), [m[0]], "group",
                                   members=[m], group_id=c.group_id) for c in retry for m in c.members]
            await asyncio.gather(*(self._send_one(c, results) for c in singles))
        for op in ops:
            results.setdefault(op.op_id, OpResult(op.op_id, Outcome.TRANSIENT, detail="no answer recorded"))
        return [results[op_id] for op_id in dict.fromkeys(op.op_id for op in ops)]

    def _settle(self, call: Call, answer: Answer, body: Any, location: str | None,
                results: dict[int, OpResult]) -> None:
        for op_id in call.op_ids:
            if call.purpose == "create" and answer.outcome == Outcome.DONE:
                data = body if isinstance(body, dict) else {}
                remote_id = data.get("id") or (location.rstrip("/").rsplit("/", 1)[-1] if location else None)
                if not remote_id:
                    results[op_id] = OpResult(op_id, Outcome.TRANSIENT, status_code=answer.status,
                                              detail="created without an id; matching before creating again")
                    continue
                login = data.get("userName") or (call.body or {}).get("userName")
                results[op_id] = result_of(op_id, answer, remote_id=str(remote_id), login=login)
            else:
                results[op_id] = result_of(op_id, answer)

    async def _send_one(self, call: Call, results: dict[int, OpResult]) -> None:
        reply = await self.send(call.method, call.path, json=call.body, writes_=len(call.op_ids))
        self._settle(call, answer_of(reply), reply.body, reply.headers.get("Location"), results)

    async def _send_bulk(self, calls: list[Call], caps: Capabilities, results: dict[int, OpResult]) -> None:
        """Group commit for Bulk (RFC 7644 §3.7): while one batch of Bulk requests is in flight,
        the calls of other worker rounds wait and then go together, packed within the server's
        limits. One round alone is sent at once; several at a time share requests. Revocation
        rounds (:mod:`provisioner.targets.lanes`) commit among themselves, never behind or with
        joiner rounds."""
        lane = lanes.urgent()
        done = asyncio.get_running_loop().create_future()
        self._bulk_waiting[lane].append((calls, results, done))
        if lane not in self._bulk_running:
            self._bulk_running.add(lane)
            asyncio.get_running_loop().create_task(self._bulk_leader(caps, lane))
        await done

    async def _bulk_leader(self, caps: Capabilities, lane: bool) -> None:
        try:
            while self._bulk_waiting[lane]:
                batch, self._bulk_waiting[lane] = self._bulk_waiting[lane], []
                sink = {id(call): results for calls, results, _ in batch for call in calls}
                merged = sorted((call for calls, _, _ in batch for call in calls), key=lambda c: c.last)
                try:
                    packs = writes.pack_bulk(merged, caps)
                    await asyncio.gather(*(self._bulk(p, sink) for p in packs if not p[0].last))
                    await asyncio.gather(*(self._bulk(p, sink) for p in packs if p[0].last))
                except BaseException as exc:  # DryRunBlocked, a bug: every waiting round hears it
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._bulk_running.discard(lane)

    async def _bulk(self, calls: list[Call], sink: dict[int, dict[int, OpResult]]) -> None:
        """One Bulk request (RFC 7644 §3.7); each operation's answer is its own outcome."""
        body = writes.bulk_body(calls, self.config.compatibility.bulk_fail_on_errors)
        reply = await self.send("POST", "Bulk", json=body, writes_=len(calls))
        whole = answer_of(reply)
        if reply.status == 413 and len(calls) > 1:
            # §3.7.4: larger than the server will take after all: halve and send again.
            half = len(calls) // 2
            await self._bulk(calls[:half], sink)
            await self._bulk(calls[half:], sink)
            return
        if whole.outcome != Outcome.DONE:
            for call in calls:
                self._settle(call, whole, None, None, sink[id(call)])
            return
        answered: dict[int, dict[str, Any]] = {}
        items = [o for o in (reply.body or {}).get("Operations") or [] if isinstance(o, dict)]
        for position, item in enumerate(items):
            key = item.get("bulkId")
            index = int(key) if isinstance(key, str) and key.isdigit() else position
            answered.setdefault(index, item)
        for index, call in enumerate(calls):
            item = answered.get(index)
            if item is None:
                # §3.7.3: with failOnErrors the server stops; what it did not reach is retried.
                self._settle(call, Answer(Outcome.TRANSIENT, None, "not processed by the Bulk request"),
                             None, None, sink[id(call)])
                continue
            status = int(str(item.get("status") or "0").split(" ", 1)[0] or 0)
            self._settle(call, errors.outcome_of(status, item.get("response")), item.get("response"),
                         item.get("location"), sink[id(call)])

    # ---- reads ------------------------------------------------------------------------------

    async def find_accounts(self, specs: Sequence[AccountSpec]) -> dict[str, tuple[str, str | None]]:
        """Match before create, for many people at once: one filter per ``lookups_per_request``
        people, OR-ing an ``eq`` term (RFC 7644 §3.4.2.2) per person and attribute of
        ``compatibility.match_attributes``; a person's account is the one found by the first
        attribute in that order (userName compared case-insensitively, RFC 7643 §4.1.1).

        An account found by userName whose externalId names someone else is not linked. Two
        accounts for one person are not linked either: picking one would be a guess.
        """
        attributes = self.config.compatibility.match_attributes
        values = {s.employee_id: render(self.mapping, s) for s in specs}
        people = [eid for eid, v in values.items() if any(v.get(a) for a in attributes)]
        per = self.config.compatibility.lookups_per_request
        caps = await self.capabilities()

        async def lookup(chunk: list[str]) -> dict[str, tuple[str, str | None]]:
            terms = sorted({f"{a} eq {filter_string(values[eid][a])}" for eid in chunk for a in attributes
                            if values[eid].get(a)})
            rows = await self.search("Users", " or ".join(terms), "id,userName,externalId",
                                     min(caps.max_results, max(2 * len(terms), 10)))
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
                    hits = index.get((a, mine[a].lower() if a == "userName" else mine[a]), [])
                    hits = [h for h in hits if not h.get("externalId") or h.get("externalId") == mine.get("externalId")]
                    if len(hits) == 1 and hits[0].get("id"):
                        found[eid] = (str(hits[0]["id"]), hits[0].get("userName"))
                        break
            return found

        parts = await asyncio.gather(*(lookup(people[i:i + per]) for i in range(0, len(people), per)))
        return {eid: match for part in parts for eid, match in part.items()}

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
                listed = await self.memberships.by_filter(rid)
                source = MANAGED_ONLY if listed is None else GROUPS_FILTER
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
        if answer.outcome == Outcome.DONE and isinstance(reply.body, dict) and reply.body.get("id"):
            return str(reply.body["id"])
        if answer.outcome == Outcome.EXISTS:  # created meanwhile by someone else (another process)
            return (await self.groups_by_name([name])).get(name)
        raise answer.error(f"creating group {name!r}: {answer.detail}")

    async def groups_by_name(self, names: Sequence[str]) -> dict[str, str]:
        """Existing groups by displayName (OR-ed filters); a name held twice is refused."""
        resolved: dict[str, str] = {}
        per = self.config.compatibility.lookups_per_request
        for start in range(0, len(names), per):
            chunk = list(names[start:start + per])
            expr = " or ".join(f"displayName eq {filter_string(n)}" for n in chunk)
            for row in await self.search("Groups", expr, "id,displayName", max(2 * len(chunk), 10)):
                name = next((n for n in chunk if n.lower() == str(row.get("displayName", "")).lower()), None)
                if name is None or not row.get("id"):
                    continue
                if name in resolved and resolved[name] != row["id"]:
                    raise TargetError(Outcome.BAD_REQUEST,
                                      f"two groups are named {name!r} in {self.name}; give the id in the target file")
                resolved[name] = str(row["id"])
        return resolved

    async def check(self) -> TargetHealth:
        """ServiceProviderConfig, one authenticated read and the managed groups; no writes."""
        health = TargetHealth(self.name, self.kind, False, False, {"base_url": self.config.base_url,
                                                                   "dry_run": self.dry_run,
                                                                   "deprovision": self.config.deprovision.mode})
        try:
            caps = await self.capabilities(refresh=True)
            health.reachable = True
            health.capabilities.update(caps.describe())
            await self.read("Users", {"count": 1, "attributes": "id"})
            health.credentials_ok = True
            names = self.config.managed_group_names()
            found = await self.groups_by_name(names) if names else {}
            missing = [n for n in names if n not in found]
            health.capabilities["managed_groups_found"] = len(found)
            health.capabilities["managed_groups_missing"] = missing
            health.detail = "ok" if not missing else (
                f"ok; {len(missing)} managed group(s) not there yet"
                + (" (created on first use)" if self.config.create_missing_groups else ": create them or fix the names"))
        except TargetError as exc:
            health.reachable = exc.status_code is not None
            health.credentials_ok = health.reachable and exc.outcome != Outcome.STOP
            health.detail = exc.detail
        return health

    async def aclose(self) -> None:
        await self.http.aclose()
