"""The Microsoft Entra ID connector, over the official msgraph-sdk (async).

Writes and bulk reads go as JSON ``$batch`` requests of at most 20 sub-requests, sent
through the SDK's request adapter with ``send_primitive_async(..., "bytes", ...)`` and parsed
here, because the SDK's batch support drops sub-response bodies (kiota-python issue 737).
Single reads (find, health check) use the SDK's request builders; the other reads (read-back,
group members, delta queries) are in :mod:`provisioner.targets.entra.reads`.

Graph answers become outcomes in one place, :mod:`provisioner.targets.entra.errors`. The
connector never retries: a 429 (whole call or per sub-request) comes back as TRANSIENT with
its Retry-After and the service's queue decides. Writes are paced by a token bucket
(:mod:`provisioner.targets.pacer`) so Graph's write budget is rarely exceeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provisioner.targets import lanes
from provisioner.targets.config import EntraTarget
from provisioner.targets.contract import (
    AccountSpec,
    OpResult,
    Outcome,
    TargetError,
    TargetHealth,
    TargetOp,
)
from provisioner.targets.entra import batching, errors, lookups
from provisioner.targets.entra.batching import BIND, CREATE, SubRequest
from provisioner.targets.entra.client import GraphClient, build_graph_client
from provisioner.targets.entra.credentials import GRAPH_SCOPE, build_credential
from provisioner.targets.entra.errors import Mapped
from provisioner.targets.entra.reads import EntraReads
from provisioner.targets.pacer import WritePacer
from provisioner.targets.transport import DryRunBlocked, RecordingTransport

log = logging.getLogger(__name__)

ERROR_MAP: dict[str, Any] = {"XXX": ODataError}


@dataclass(slots=True)
class SubAnswer:
    """What came back for one sub-request."""

    mapped: Mapped
    body: Any = None
    whole_batch: bool = False  # the $batch call itself failed: no answer of its own
    error: BaseException | None = None


class EntraConnector(EntraReads):
    """``Connector`` for Microsoft Entra ID through Microsoft Graph v1.0."""

    kind = "entra"

    def __init__(
        self,
        config: EntraTarget,
        graph: GraphClient,
        credential: Any,
        *,
        owns_credential: bool,
    ) -> None:
        self.config = config
        self.name = config.name
        self.graph = graph
        self.credential = credential
        self._owns_credential = owns_credential
        self.pacer = WritePacer(config.throttle.writes_per_second, config.throttle.burst)
        self._slots = lanes.Slots(config.throttle.concurrency)  # one kept for revocation (lanes)

    @classmethod
    def create(
        cls,
        config: EntraTarget,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        credential: Any = None,
        dry_run: bool = False,
    ) -> EntraConnector:
        """Build a connector. ``credential=None`` builds one from ``config.auth`` (and the
        connector closes it in :meth:`aclose`); an injected one stays the caller's."""
        owns = credential is None
        if credential is None:
            credential = build_credential(config.auth)
        graph = build_graph_client(config, credential, transport=transport, dry_run=dry_run)
        return cls(config, graph, credential, owns_credential=owns)

    # ---- plumbing -----------------------------------------------------------------------

    @property
    def recorder(self) -> RecordingTransport:
        """The recording transport: ``.calls`` and ``.calls_by_method`` count HTTP calls."""
        return self.graph.recorder

    @property
    def dry_run(self) -> bool:
        return self.graph.dry_run

    @property
    def client(self) -> Any:
        """The underlying ``GraphServiceClient``."""
        return self.graph.client

    def directory_object_url(self, object_id: str) -> str:
        """The absolute ``@odata.id`` of a directory object, as ``odata.bind``/``$ref`` want."""
        return f"{self.graph.base_url}/directoryObjects/{batching.path_segment(object_id)}"

    async def _sdk(self, call: Any) -> Any:
        """Await one SDK call; remote failures become ``TargetError`` (mapped in errors.py)."""
        try:
            return await call
        except TargetError:
            raise
        except errors.remote_error_types() as exc:
            raise errors.from_exception(exc).error() from exc

    async def _post_batch(self, subs: list[SubRequest]) -> dict[str, SubAnswer]:
        """One ``POST /$batch``: the raw-bytes workaround, parsed here with explicit ids."""
        info = RequestInformation(Method.POST, "{+baseurl}/$batch")
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(batching.batch_body(subs), "application/json")
        try:
            raw = await self.graph.adapter.send_primitive_async(info, "bytes", ERROR_MAP)
            items = batching.parse_batch_response(raw)
        except errors.remote_error_types() as exc:
            mapped = errors.from_exception(exc)
            if mapped.status_code == 429 and mapped.retry_after and any(s.is_write for s in subs):
                self.pacer.hold(mapped.retry_after)
            return {s.id: SubAnswer(mapped, whole_batch=True, error=exc) for s in subs}
        except ValueError as exc:  # a 2xx whose body is not a $batch answer
            mapped = Mapped(Outcome.TRANSIENT, f"unreadable $batch response: {exc}")
            return {s.id: SubAnswer(mapped, whole_batch=True, error=exc) for s in subs}
        answers: dict[str, SubAnswer] = {}
        for sub in subs:
            item = items.get(sub.id)
            if item is None:
                missing = Mapped(Outcome.TRANSIENT, f"$batch answered nothing for sub-request {sub.id}")
                answers[sub.id] = SubAnswer(missing)
                continue
            mapped = errors.from_batch_item(item)
            answers[sub.id] = SubAnswer(mapped, item.get("body"))
            if mapped.status_code == 429 and sub.is_write and mapped.retry_after:
                self.pacer.hold(mapped.retry_after)
        return answers

    async def _run_batch(self, subs: list[SubRequest]) -> dict[str, SubAnswer]:
        async with self._slots.hold():
            writes = sum(1 for s in subs if s.is_write)
            if writes:
                await self.pacer.acquire(writes, urgent=lanes.urgent())
            return await self._post_batch(subs)

    async def _execute(self, subs: Sequence[SubRequest]) -> dict[str, SubAnswer]:
        """Send sub-requests in ``$batch``es of 20, up to ``throttle.concurrency`` at once."""
        batches = batching.chunk(list(subs))
        if not batches:
            return {}
        answers: dict[str, SubAnswer] = {}
        for part in await asyncio.gather(*(self._run_batch(b) for b in batches)):
            answers.update(part)
        return answers

    @staticmethod
    def _raise_if_nothing_answered(answers: dict[str, SubAnswer]) -> None:
        """Every ``$batch`` failed as a whole: nothing reached Graph's handlers."""
        if not answers or not all(a.whole_batch for a in answers.values()):
            return
        failures = list(answers.values())
        for answer in failures:
            if isinstance(answer.error, DryRunBlocked):
                raise answer.error
        worst = next((a for a in failures if a.mapped.outcome == Outcome.STOP), failures[0])
        raise worst.mapped.error() from worst.error

    # ---- writes -------------------------------------------------------------------------

    async def apply(self, ops: Sequence[TargetOp]) -> list[OpResult]:
        """Carry out write operations in as few ``$batch`` calls as Graph allows.

        Round 1 sends every planned sub-request (ceil(n/20) calls). A ``members@odata.bind``
        PATCH is all-or-nothing, so when it fails because a member is already there (400
        "already exist"), or one reference is missing or refused, its members are retried
        one by one as ``POST members/$ref`` in round 2, in the same call, so each operation
        gets its own outcome. Per-item 429/5xx come back TRANSIENT with Retry-After.
        """
        if not ops:
            return []
        plan = batching.plan_writes(
            ops,
            directory_object_url=self.directory_object_url,
            usage_location=self.config.accounts.usage_location,
            mapping=self.config.effective_mapping(),
            base_url=self.graph.base_url,
        )
        results: dict[int, OpResult] = {r.op_id: r for r in plan.results}
        if plan.subs:
            answers = await self._execute(plan.subs)
            self._raise_if_nothing_answered(answers)
            retry_one_by_one: list[SubRequest] = []
            retry_ids = batching.IdCounter("r")
            for sub in plan.subs:
                answer = answers[sub.id]
                if sub.purpose == BIND and answer.mapped.outcome in (
                    Outcome.EXISTS,
                    Outcome.NOT_FOUND,
                    Outcome.BAD_REQUEST,
                ):
                    assert sub.group_id is not None
                    retry_one_by_one.extend(
                        batching.member_ref_requests(
                            sub.group_id, sub.members, self.directory_object_url, retry_ids
                        )
                    )
                    continue
                self._record(sub, answer, results)
            if retry_one_by_one:
                answers = await self._execute(retry_one_by_one)
                for sub in retry_one_by_one:
                    self._record(sub, answers[sub.id], results)
        missing = [op.op_id for op in ops if op.op_id not in results]
        for op_id in missing:  # defensive: the contract is one result per operation
            results[op_id] = OpResult(op_id, Outcome.TRANSIENT, detail="no answer recorded")
        return [results[op.op_id] for op in _unique_ops(ops)]

    @staticmethod
    def _record(sub: SubRequest, answer: SubAnswer, results: dict[int, OpResult]) -> None:
        mapped = answer.mapped
        for op_id in sub.op_ids:
            if sub.purpose == CREATE and mapped.outcome == Outcome.DONE:
                body = answer.body if isinstance(answer.body, dict) else {}
                remote_id = body.get("id")
                if not remote_id:
                    results[op_id] = OpResult(
                        op_id,
                        Outcome.TRANSIENT,
                        detail="create answered without an id; match before creating again",
                        status_code=mapped.status_code,
                    )
                    continue
                results[op_id] = mapped.result(
                    op_id, remote_id=str(remote_id), login=body.get("userPrincipalName")
                )
            else:
                results[op_id] = mapped.result(op_id)

    # ---- reads --------------------------------------------------------------------------

    async def find_account(self, spec: AccountSpec) -> tuple[str, str | None] | None:
        """Match before create: the account holding this person's employee id (only without
        one, their userPrincipalName: an account that merely holds the login is someone
        else's). See ``find_accounts``."""
        return (await self.find_accounts([spec])).get(spec.employee_id)

    async def find_accounts(self, specs: Sequence[AccountSpec]) -> dict[str, tuple[str, str | None]]:
        """Match before create for many people: ``employeeId in (...)`` lookups of 15 people
        each, 20 to a ``$batch`` (:mod:`provisioner.targets.entra.lookups`). Two accounts
        holding one employee id, or any lookup failing, raise ``TargetError``."""
        subs = lookups.lookup_requests(specs)
        if not subs:
            return {}
        return lookups.matches(specs, await self._read_all(subs))

    async def check(self) -> TargetHealth:
        """Get a token, then ``GET /groups?$top=1`` (a read: allowed in dry-run)."""
        capabilities = {
            "graph_url": self.graph.base_url,
            "batch_limit": batching.BATCH_LIMIT,
            "bind_limit": batching.BIND_LIMIT,
            "writes_per_second": self.config.throttle.writes_per_second,
            "burst": self.config.throttle.burst,
            "concurrency": self.config.throttle.concurrency,
            "dry_run": self.dry_run,
            "revoke_sessions": self.config.revoke_sessions,
        }
        health = TargetHealth(self.name, self.kind, False, False, capabilities)
        try:
            await self.credential.get_token(GRAPH_SCOPE)
        except Exception as exc:  # any failure to get a token is a credentials problem
            health.detail = f"no token: {errors.from_exception(exc).detail}"
            return health
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(top=1, select=["id"])
        try:
            await self._sdk(self.client.groups.get(RequestConfiguration(query_parameters=query)))
        except TargetError as exc:
            health.reachable = exc.status_code is not None
            health.credentials_ok = health.reachable and exc.outcome != Outcome.STOP
            health.detail = exc.detail
            return health
        health.reachable = True
        health.credentials_ok = True
        health.detail = "ok"
        return health

    async def aclose(self) -> None:
        await self.graph.aclose()
        if self._owns_credential:
            close = getattr(self.credential, "close", None)
            if close is not None:
                await close()


def _unique_ops(ops: Sequence[TargetOp]) -> list[TargetOp]:
    seen: set[int] = set()
    out: list[TargetOp] = []
    for op in ops:
        if op.op_id not in seen:
            seen.add(op.op_id)
            out.append(op)
    return out
