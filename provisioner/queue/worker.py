"""The worker: claims operations, runs them through the connectors, records what happened.

Each round is claim (one transaction) -> call the targets (no transaction open) -> record (one
transaction). A worker killed between the call and the record leaves its operations ``running``
with a lease; once the lease runs out another worker claims them again, and because every
operation is idempotent against the target (see ``decide``) the effect happens exactly once.
A worker told to stop (SIGTERM) claims nothing more, records what its rounds have, and gives
back what has no outcome yet instead of leaving it under its lease (``run_forever``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections import Counter as TallyCounter
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter

from provisioner.audit.service import Entry, append_many
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.intake import repository as intake
from provisioner.planner.service import PlanningContext, plan_identity
from provisioner.queue import isolation, readback, stopping
from provisioner.queue import repository as queue
from provisioner.queue.decide import Action, backoff_cap, backoff_seconds, decide
from provisioner.queue.group_ids import GroupIds
from provisioner.queue.jobs import Job
from provisioner.queue.known import KnownState, apply_outcome, know_account
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.settings import Settings
from provisioner.targets import lanes
from provisioner.targets.contract import (
    AccountState,
    Connector,
    OpKind,
    OpResult,
    Outcome,
    TargetError,
)

log = logging.getLogger(__name__)
OPS_DONE = Counter("provisioner_operations_total", "Operation attempts by outcome",
                   ["target", "kind", "action"])
MAX_VERIFY_ROUNDS = readback.MAX_VERIFY_ROUNDS
MAX_THROTTLED = 200
ADDITIONS_PER_REQUEST = 20  # members in one Graph members@odata.bind PATCH (the largest target batch)


@dataclass
class Settled:
    job: Job
    result: OpResult
    action: Action
    linked: tuple[str, str | None] | None = None  # (remote id, login) found by match-before-create


@dataclass
class RoundReport:
    claimed: int = 0
    settled: list[Settled] = field(default_factory=list)
    checks: list[tuple[Job, AccountState | None, str]] = field(default_factory=list)
    counted: TallyCounter[tuple[str, str, str]] = field(default_factory=TallyCounter)  # (target, kind, action)

    def count(self) -> None:
        for labels, n in self.counted.items():
            OPS_DONE.labels(*labels).inc(n)
        self.counted.clear()


class Worker:
    def __init__(self, db: Database, ctx: PlanningContext, connectors: dict[str, Connector],
                 settings: Settings, *, worker_id: str | None = None) -> None:
        self.db, self.ctx, self.connectors, self.settings = db, ctx, connectors, settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hurry: asyncio.Event | None = None  # set when a stopping worker stops waiting for its calls
        self.halted_until: dict[str, datetime] = {}
        self.groups = GroupIds(db, ctx)
        self.held_until: datetime | None = None  # group additions held for more of their group

    def wake(self) -> None:
        """Start a round now instead of at the next poll; safe from any thread (the SCIM
        endpoint re-plans people from its worker threads)."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- claim -------------------------------------------------------------------------------
    def _claim(self, revocation_only: bool = False) -> tuple[list[Job], int]:
        """A round is revocation work only, or joiner/mover work only, never both: revocation
        when any is ready (the reserved loop takes nothing else), so a leaver's operations never
        wait in a round filled with joiner operations for a slow target."""
        now = utcnow()
        live = [t for t in self.connectors if self.halted_until.get(t, now) <= now]
        if not live:
            return [], 0
        lease, skip_locked = timedelta(seconds=self.settings.lease_seconds), self.db.dialect == "postgresql"
        with self.db.transaction() as session:
            def claim(revocation: bool) -> list[Operation]:
                return queue.claim(session, self.worker_id, now, lease, self.settings.worker_batch_size,
                                   revocation=revocation, skip_locked=skip_locked, targets=live,
                                   additions=revocation)
            ops = claim(True)
            if not ops and not revocation_only:
                # Group additions group by group, 20 to a request (Graph's members@odata.bind).
                # HR events still to be planned (an import under way) bring more additions.
                ops, self.held_until = queue.claim_additions(
                    session, self.worker_id, now, lease, self.settings.member_add_claim_size,
                    per_request=ADDITIONS_PER_REQUEST, hold=timedelta(seconds=self.settings.member_add_hold_seconds),
                    skip_locked=skip_locked, targets=live,
                    planning=functools.cache(lambda: intake.has_due(session, now)))
                ops += claim(False)
            # One operation whose call cannot be prepared is dead-lettered, never the round.
            return isolation.build_isolated(session, ops, self.ctx.naming), len(ops)

    # -- call the targets ----------------------------------------------------------------------
    async def _run_target(self, target: str, jobs: list[Job], report: RoundReport) -> None:
        connector = self.connectors[target]
        ready = [j for j in jobs if j.pre is None]
        for job in jobs:
            if job.pre is not None and job.kind != OpKind.VERIFY_REVOKED:
                self._settle(report, job, job.pre)
        verify = [j for j in ready if j.kind == OpKind.VERIFY_REVOKED]
        calls = [j for j in ready if j.kind != OpKind.VERIFY_REVOKED]
        try:
            managed = set(self.ctx.targets[target].managed_group_names())
            keys = {j.group_key for j in calls if j.group_key} | (managed if verify else set())
            group_ids = await self.groups.resolve(target, connector, keys) if keys else {}
            for job in [j for j in calls if j.group_key and j.group_key not in group_ids]:
                calls.remove(job)
                self._settle(report, job, OpResult(job.op_id, Outcome.BAD_REQUEST,
                             detail=f"managed group {job.group_key!r} not found in target {target}"))
            # Match before create: an account already holding this person's employee id is
            # linked, never duplicated.
            creates = [j for j in calls if j.kind == OpKind.CREATE_ACCOUNT and j.spec is not None]
            found = await connector.find_accounts([j.spec for j in creates if j.spec]) if creates else {}
            for job in creates:
                match = found.get(job.spec.employee_id) if job.spec else None
                if match is not None:
                    calls.remove(job)
                    report.settled.append(Settled(job, OpResult(job.op_id, Outcome.EXISTS,
                                                  detail="found by employee id"), Action.LINK, match))
            if calls:
                results = await connector.apply([j.target_op(group_ids) for j in calls])
                by_id = {r.op_id: r for r in results}
                answered = [(job, by_id.get(job.op_id) or OpResult(job.op_id, Outcome.TRANSIENT,
                                                                   detail="connector returned no result"))
                            for job in calls]
                # A create answered "exists" is looked up (all of them in one call) and linked.
                taken = [job.spec for job, result in answered if job.spec and decide(
                    job.kind, result.outcome, job.attempts, self.settings.max_attempts) == Action.LINK]
                holders = await connector.find_accounts(taken) if taken else {}
                for job, result in answered:
                    self._settle(report, job, result, holders.get(job.spec.employee_id) if job.spec else None)
            if verify:
                await self._verify(connector, verify, group_ids, managed, report)
        except TargetError as exc:
            for job in calls + verify:
                if not any(s.job is job for s in report.settled):
                    self._settle(report, job, OpResult(job.op_id, exc.outcome, detail=exc.detail,
                                                       retry_after=exc.retry_after,
                                                       status_code=exc.status_code))
        except Exception as exc:  # a bug or an unexpected library error: retried, and logged
            log.exception("target %s: unexpected error running %d operations", target, len(jobs))
            for job in calls + verify:
                if not any(s.job is job for s in report.settled):
                    self._settle(report, job, OpResult(job.op_id, Outcome.TRANSIENT,
                                                       detail=f"unexpected error: {exc!r}"))

    async def _verify(self, connector: Connector, jobs: list[Job], group_ids: dict[str, str],
                      managed: set[str], report: RoundReport) -> None:
        wanted = {group_ids[k]: k for k in managed if k in group_ids}
        # Every direct membership is read (managed ones decide ``verified``; the others are
        # listed and flagged in the evidence: provisioner.evidence.checks).
        states = await connector.read_accounts([j.account_id for j in jobs if j.account_id],
                                               list(wanted), all_groups=True)
        for job in jobs:
            # No account id at all: nothing was ever created there, so nothing remains.
            state = (states.get(job.account_id) if job.account_id else
                     AccountState(remote_id="", exists=False, enabled=None, group_ids=set(), all_groups={}))
            if state is not None and state.error is not None:  # this account alone: read it again
                err = state.error
                self._settle(report, job, OpResult(job.op_id, err.outcome, detail=err.detail,
                                                   retry_after=err.retry_after, status_code=err.status_code))
                continue
            job.verify_group_ids = wanted
            report.checks.append((job, state, connector.name))
            self._settle(report, job, OpResult(job.op_id, Outcome.DONE, detail="read back"))

    def _settle(self, report: RoundReport, job: Job, result: OpResult,
                linked: tuple[str, str | None] | None = None) -> None:
        action = decide(job.kind, result.outcome, job.attempts, self.settings.max_attempts,
                        renaming=bool(job.spec and job.spec.rename) and job.target == self.ctx.login_owner,
                        manager_absent=job.pre is not None and job.pre is result)
        report.settled.append(Settled(job, result, action, linked))
        report.counted[(job.target, job.kind.value, action.value)] += 1  # (metrics: once per round)

    # -- record --------------------------------------------------------------------------------
    def _record(self, report: RoundReport) -> set[str]:
        """Write every outcome in one transaction, and in the same transaction plan again the
        people whose work finished after a newer plan of theirs (a worker killed after the
        commit would otherwise lose that: a leaver's account created after the leaver plan
        stayed enabled). Returns the identities planned again."""
        now = utcnow()
        replan: set[str] = set()
        audit: list[Entry] = []
        succeeded: list[int] = []
        failed: list[int] = []
        parked: list[int] = []  # waiting for what they refer to (a manager's account)
        done: list[int] = []  # succeeded as claimed: marked in one statement
        with self.db.transaction() as session, session.no_autoflush:
            # The people first, in one order: a plan being made for one of them finishes before
            # this record reads which plan is their latest (or waits for this one to commit).
            identities.lock_ids(session, [s.job.identity_id for s in report.settled])
            # Ours still: the others' lease ran out and another worker has them now.
            mine = queue.still_claimed(session, [s.job.op_id for s in report.settled], self.worker_id)
            # Only outcomes other than plain success change a row field by field (ORM objects).
            ops = {op.id: op for op in queue.by_ids(session, [
                s.job.op_id for s in report.settled if s.job.op_id in mine and s.action != Action.SUCCEED])}
            # Memberships: of the round's groups only (a read-back may find any group: all).
            known = KnownState(session, [s.job.identity_id for s in report.settled],
                               groups=None if report.checks else {s.job.group_key for s in report.settled})
            for s in report.settled:
                job = s.job
                if job.op_id not in mine:
                    continue
                if s.action == Action.SUCCEED:
                    self._succeed(known, s, now, replan)
                    done.append(job.op_id)
                    status, attempt = OpStatus.SUCCEEDED, job.attempts
                else:
                    op = ops[job.op_id]
                    self._apply_action(known, op, s, now, replan, succeeded, failed)
                    if s.action == Action.WAIT:
                        parked.append(op.id)
                    status, attempt = op.status, op.attempts
                audit.append(Entry("operation.attempt", job.employee_id or job.identity_id, {
                    "op_id": job.op_id, "plan_id": job.plan_id, "target": job.target, "kind": job.kind.value,
                    "group": job.group_key, "attempt": attempt, "outcome": s.result.outcome.value,
                    "action": s.action.value, "status": status, "detail": s.result.detail[:500],
                    "http_status": s.result.status_code}))
            unverified: dict[int, tuple[str, str]] = {}  # read-backs that found access
            for job, state, target in report.checks:
                outcome = readback.record_check(known, job, state, target, now, audit,
                                                revoke_sessions=self.ctx.targets[target].revoke_sessions)
                if outcome is not None and job.op_id in mine:
                    unverified[job.op_id] = outcome
            known.flush()
            session.flush()
            queue.mark_succeeded(session, [i for i in done if unverified.get(i, ("",))[0] != OpStatus.DEAD],
                                 self.worker_id, now)
            queue.mark_checked(session, unverified, self.worker_id, now)
            succeeded += done
            queue.release_dependents(session, succeeded, now)
            queue.release_manager_links(session, [s.job.identity_id for s in report.settled
                                                  if s.job.kind == OpKind.CREATE_ACCOUNT and s.job.op_id in mine
                                                  and s.action in (Action.SUCCEED, Action.LINK)], parked, now)
            queue.fail_dependents(session, failed, now, "an operation it depends on failed")
            queue.release_verifications(session, [s.job.plan_id for s in report.settled], now)
            append_many(session, audit)
            session.flush()
            for identity_id in sorted(replan):
                self._converge(session, known.people.get(identity_id), identity_id)
        return replan

    def _converge(self, session, identity, identity_id: str) -> None:
        """Plan the person again inside the record (a savepoint: one person's failing plan never
        loses the round's outcomes; the next event or reconcile plans them)."""
        if identity is None:
            return
        try:
            with session.begin_nested():
                plan_identity(session, self.ctx, identity, trigger="worker:converge",
                              previous_state=identity.state)
        except Exception:
            log.exception("re-planning identity %s after a round failed; the next plan of this person "
                          "(an event, reconcile) converges it", identity_id,
                          extra={"identity_id": identity_id, "alert": "replan_failed"})

    def _succeed(self, known: KnownState, s: Settled, now: datetime, replan: set[str]) -> None:
        """What a succeeded operation changes besides its row (marked with the round's others)."""
        job = s.job
        apply_outcome(known, job, s.result, now, self.ctx.login_owner)
        if job.kind == OpKind.UPDATE_ACCOUNT and job.spec is not None and job.spec.rename \
                and job.target == self.ctx.login_owner:
            replan.add(job.identity_id)  # the login may have settled on a suffix: the SCIM apps follow it
        latest = known.latest_plan.get(job.identity_id)
        if latest is not None and job.plan_id is not None and latest != job.plan_id:
            replan.add(job.identity_id)  # finished after a newer plan: check it still fits

    def _apply_action(self, known: KnownState, op: Operation, s: Settled, now: datetime,
                      replan: set[str], succeeded: list[int], failed: list[int]) -> None:
        job, result, action = s.job, s.result, s.action
        op.lease_until = None
        op.last_error = None if action == Action.SUCCEED else f"{result.outcome}: {result.detail}"[:2000]
        if action == Action.WAIT:
            # Not a failure: parked without a dependency until what it refers to exists
            # (queue.repository.release_manager_links), or a newer plan replaces it.
            op.status, op.depends_on_id, op.next_attempt_at = OpStatus.WAITING, None, now
            op.attempts -= 1
            return
        if action == Action.LINK:
            if s.linked is not None:
                remote_id, login = s.linked
                know_account(known, job, remote_id, login, now, linked=True, login_owner=self.ctx.login_owner)
                op.status, op.completed_at = OpStatus.SUCCEEDED, now
                op.last_error = f"linked existing account {remote_id}"
                succeeded.append(op.id)
                replan.add(job.identity_id)  # converge the linked account (enable, groups)
                return
            suffix = int(op.payload.get("suffix", 1)) + 1
            if op.target != self.ctx.login_owner:
                # The login is the login owner's (Entra ID's); here it belongs to an account
                # that is not this person's (another externalId): a person must look.
                action = Action.DEAD
                op.last_error = (f"{result.outcome}: {result.detail}; the account holding this userName "
                                 f"belongs to someone else (externalId differs), not linked")[:2000]
            elif suffix > self.settings.max_upn_suffix:
                action = Action.DEAD
            else:
                op.payload = {**op.payload, "suffix": suffix}
                op.status, op.next_attempt_at = OpStatus.PENDING, now
                op.attempts -= 1  # a taken login is not a failed attempt
                return
        if action == Action.NEXT_LOGIN:
            suffix = int(op.payload.get("suffix", 1)) + 1
            if suffix > self.settings.max_upn_suffix:
                action = Action.DEAD
            else:  # the job is built again with the next login (queue/jobs.py)
                op.payload = {**op.payload, "suffix": suffix}
                op.status, op.next_attempt_at = OpStatus.PENDING, now
                op.attempts -= 1  # a taken login is not a failed attempt
                return
        if action == Action.RETRY:
            if result.status_code == 429:
                # Throttling is the remote pacing us, not a failure: it does not use up attempts
                # (bounded separately, so a permanently throttled target still surfaces).
                throttled = int(op.payload.get("throttled", 0)) + 1
                op.payload = {**op.payload, "throttled": throttled}
                op.attempts -= 1
                if throttled > MAX_THROTTLED:
                    action = Action.DEAD
            delay = backoff_seconds(op.attempts, result.retry_after,
                                    base=self.settings.backoff_base_seconds,
                                    cap=backoff_cap(Priority.is_revocation(op.priority),
                                                    cap=self.settings.backoff_max_seconds,
                                                    revocation_cap=self.settings.revocation_backoff_max_seconds))
            if action == Action.RETRY:
                op.status, op.next_attempt_at = OpStatus.PENDING, now + timedelta(seconds=delay)
        elif action == Action.HALT:
            pause = max(result.retry_after or 0.0, 60.0)
            self.halted_until[op.target] = now + timedelta(seconds=pause)
            op.status, op.next_attempt_at = OpStatus.PENDING, now + timedelta(seconds=pause)
            op.attempts -= 1
            log.error("target %s halted for %.0f s: %s", op.target, pause, result.detail,
                      extra={"target": op.target, "alert": "target_halted"})
        if action == Action.DEAD:
            op.status, op.completed_at = OpStatus.DEAD, now
            failed.append(op.id)
            if job.kind == OpKind.ADD_MEMBER and job.group_key and result.outcome == Outcome.TRANSIENT:
                # Given up without an answer: the member may have been added, so it is counted
                # as held and a later revocation removes it (removing an absent member is done).
                known.add_membership(job.identity_id, job.target, job.group_key, now)
            latest = known.latest_plan.get(job.identity_id)
            if (job.kind == OpKind.ADD_MEMBER and result.outcome != Outcome.TRANSIENT and latest is not None
                    and job.plan_id is not None and latest != job.plan_id):
                # A newer plan may have left this addition to this operation (it was running:
                # planner.service.Known.adding); it surely failed: check the person again.
                replan.add(job.identity_id)
            log.error("operation %s (%s %s on %s) dead-lettered after %d attempt(s): %s", op.id,
                      op.kind, op.group_key or "", op.target, op.attempts, op.last_error,
                      extra={"op_id": op.id, "target": op.target, "alert": "dead_letter"})

    # -- loops ---------------------------------------------------------------------------------
    async def run_once(self, *, revocation_only: bool = False) -> int:
        jobs, claimed = await asyncio.to_thread(self._claim, revocation_only)
        if not jobs:
            return 0
        by_target: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_target[job.target].append(job)
        replan: set[str] = set()

        async def target_round(target: str, target_jobs: list[Job]) -> None:
            # Each target's outcomes are recorded as soon as its calls end: a slow target never
            # holds back another's results (nor the read-back they release).
            report = RoundReport(claimed=len(target_jobs))
            with lanes.revocation_lane(any(Priority.is_revocation(j.priority) for j in target_jobs)):
                finished = await stopping.unless_hurried(self._run_target(target, target_jobs, report), self._hurry)
            report.count()
            # Recorded whatever it takes (provisioner.queue.isolation): the calls are done.
            replan.update(await asyncio.to_thread(
                isolation.record_round, self.db, self._record, report, worker_id=self.worker_id,
                target=target, wait_seconds=self.settings.lease_seconds))
            if not finished:  # stopping: what has no outcome yet goes back to the queue
                answered = {s.job.op_id for s in report.settled}
                await asyncio.to_thread(self._release, [j.op_id for j in target_jobs if j.op_id not in answered])

        await asyncio.gather(*(target_round(t, js) for t, js in by_target.items()))
        if replan:
            self.wake()  # the new plans' work is ready now
        return claimed

    def held_for(self) -> float:
        """Seconds until group additions held by the last claim go out (0: none held)."""
        if self.held_until is None:
            return 0.0
        return max(0.0, (self.held_until - utcnow()).total_seconds())

    async def run_until_idle(self, *, max_wait: float = 30.0, loops: int = 1) -> None:
        """Run until nothing is ready now, held group additions included (tests, the demo,
        benchmarks)."""
        deadline = asyncio.get_running_loop().time() + max_wait
        while asyncio.get_running_loop().time() < deadline:
            counts = await asyncio.gather(*(self.run_once() for _ in range(loops)))
            if sum(counts) == 0:
                if not self.held_for():
                    return
                await asyncio.sleep(min(self.held_for(), 0.1))

    async def run_forever(self, stop: asyncio.Event, *, loops: int | None = None) -> None:
        """``worker_concurrency`` loops taking any work (revocation first), and
        ``worker_revocation_loops`` reserved loops taking only revocation work, so a leaver's
        operations are claimed at once even while every other loop is busy with joiners.

        Once ``stop`` is set nothing new is claimed and the rounds under way finish and are
        recorded; a round still calling its target ``stop_grace_seconds`` later stops calling,
        records the outcomes it has and puts the rest back in the queue (``_release``)."""
        self._loop = asyncio.get_running_loop()
        self._hurry = asyncio.Event()
        async def loop(revocation_only: bool = False) -> None:
            while not stop.is_set():
                try:
                    done = await self.run_once(revocation_only=revocation_only)
                except Exception:
                    log.exception("worker round failed; retrying")
                    done = 0
                if done == 0:
                    self._wake.clear()
                    pause = self.settings.worker_poll_seconds
                    if self.held_for():  # held group additions go out when their hold ends
                        pause = min(pause, self.held_for() + 0.01)
                    try:
                        await asyncio.wait_for(self._wake.wait(), pause)
                    except TimeoutError:
                        pass
        work = asyncio.gather(*(loop() for _ in range(loops or self.settings.worker_concurrency)),
                              *(loop(True) for _ in range(self.settings.worker_revocation_loops)))
        await stopping.until_stopped(work, stop, grace=self.settings.stop_grace_seconds,
                                     wake=self._wake, hurry=self._hurry)

    def _release(self, op_ids: list[int]) -> None:
        """Claims given back unfinished when stopping: claimable again at once, as if their
        lease had run out (every operation is idempotent against its target, see ``decide``)."""
        if not op_ids:
            return
        with self.db.transaction() as session:
            released = queue.release_claims(session, op_ids, self.worker_id, utcnow())
        log.info("stopping: %d operation(s) without an outcome put back in the queue", released)
