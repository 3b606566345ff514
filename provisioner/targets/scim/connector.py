"""The SCIM 2.0 connector: one app's SCIM server as a target (RFC 7643, RFC 7644).

It reads the server's ServiceProviderConfig and adapts: Bulk when offered, PATCH for
memberships (many members per operation), GET + PUT with ``If-Match`` where PATCH is not
offered, filters for lookups. Every write's effect is confirmed and each operation climbs its
own ladder of forms when the app refuses one or answers without the effect (:mod:`ladders`,
:mod:`forms`). Answers become outcomes in one place (:mod:`errors`); the
connector never retries, the queue does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from provisioner.targets import lanes
from provisioner.targets.contract import (
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
from provisioner.targets.scim.forms import LearnedForms, Lesson
from provisioner.targets.scim.http import Reply, ScimHttp
from provisioner.targets.scim.ladders import LadderRun
from provisioner.targets.scim.memberships import (
    GroupMemberships,
)
from provisioner.targets.scim.reads import ScimReads
from provisioner.targets.scim.updates import FallbackUpdates
from provisioner.targets.scim.writes import Call
from provisioner.targets.transport import RecordingTransport

log = logging.getLogger(__name__)

CAPABILITIES_TTL = 300.0  # seconds a ServiceProviderConfig read is trusted
MAX_HOLD_SECONDS = 5.0  # a longer Retry-After is waited out in the queue, not in the worker


class ScimConnector(ScimReads):
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
        self.forms = LearnedForms(config)  # what this app was found not to do (forms.py)
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
        if writes_ and method in ("POST", "DELETE"):  # a create or delete: listings are stale
            resource = path.strip("/").split("/", 1)[0]
            self.listings.invalidate(None if resource == "Bulk" else resource)
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
        return self._caps

    # ---- writes -----------------------------------------------------------------------------

    async def apply(self, ops: Sequence[TargetOp]) -> list[OpResult]:
        """Each operation in the form learned to work for this app, its effect confirmed, the
        next form tried when it is missing (:mod:`ladders`)."""
        if not ops:
            return []
        return await LadderRun(self, await self.capabilities()).apply(ops)

    async def report_learned(self, lesson: Lesson) -> None:
        """Hand a newly learned form to the runtime's hook (it persists it); never fails a write."""
        hook = self.forms.on_learned
        if hook is None or self.dry_run:
            return
        try:
            await asyncio.to_thread(hook, lesson)
        except Exception:
            log.exception("%s: could not keep what was learned about %s", self.name, lesson.operation)

    def _settle(self, call: Call, answer: Answer, body: Any, location: str | None,
                results: dict[int, OpResult]) -> None:
        call.status, call.reply = answer.status, body
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
        reply = await self.send(call.method, call.path, json=call.body, params=call.params,
                                writes_=len(call.op_ids))
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
                    for wave in writes.waves([p for p in packs if not p[0].last]):
                        await asyncio.gather(*(self._bulk(p, sink) for p in wave))
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

    async def check(self) -> TargetHealth:
        """ServiceProviderConfig, one authenticated read and the managed groups; no writes."""
        health = TargetHealth(self.name, self.kind, False, False, {"base_url": self.config.base_url,
                                                                   "dry_run": self.dry_run,
                                                                   "deprovision": self.config.deprovision.mode})
        try:
            caps = await self.capabilities(refresh=True)
            health.reachable = True
            health.capabilities.update(caps.describe())
            health.capabilities["learned_forms"] = self.forms.describe(caps)
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
