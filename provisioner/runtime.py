"""Wire one process: database, policies, targets, connectors, worker, API and scheduler.

``provisioner serve`` runs all of it; ``provisioner worker`` only the worker (scale-out on
PostgreSQL); the demo, tests and benchmarks drive ``drain()`` to run everything that is due.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from sqlalchemy.orm import Session

from provisioner.api.app import create_app
from provisioner.audit.service import chain_key, read_head
from provisioner.change_control.approvals_gate import rules_for
from provisioner.change_control.approvals_service import expire_due
from provisioner.change_control.holds.service import hold_policy, settle_stragglers
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.hr_sources.declarations import HrSource, load_sources
from provisioner.hr_sources.snapshots import service as snapshots
from provisioner.identities import repository as identities
from provisioner.intake.processor import ProcessStats, process_due
from provisioner.planner.service import PlanningContext, plan_identity
from provisioner.policies.loader import load_policies
from provisioner.queue.worker import Worker
from provisioner.reconcile.schedule import scheduled_reconcile
from provisioner.rollouts import service as rollouts
from provisioner.rollouts.schemas import RolloutResult
from provisioner.settings import Settings
from provisioner.targets.config import ConfigError, load_targets
from provisioner.targets.contract import Connector
from provisioner.targets.learned import service as learned
from provisioner.targets.registry import build_connectors

log = logging.getLogger(__name__)
audit_log = logging.getLogger("provisioner.audit")


class Runtime:
    def __init__(self, settings: Settings, db: Database, ctx: PlanningContext,
                 connectors: dict[str, Connector], hr_sources: Mapping[str, HrSource] | None = None) -> None:
        self.settings, self.db, self.ctx, self.connectors = settings, db, ctx, connectors
        self.hr_sources = dict(hr_sources or {})
        self.worker = Worker(db, ctx, connectors, settings)
        self._events_ready = asyncio.Event()

    @classmethod
    def load(cls, settings: Settings, *, db: Database | None = None,
             transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
             dry_run: bool = False) -> Runtime:
        targets = load_targets(settings.targets_dir)
        policies = load_policies(settings.policies_dir, targets)
        ctx = PlanningContext(policies=policies, targets=targets,
                              contract_end_timezone=settings.contract_end_timezone,
                              holds=hold_policy(settings, targets))
        hr_sources = load_sources(settings.hr_sources_dir)
        connectors = build_connectors(targets, transports=transports, dry_run=dry_run)
        db = db or Database(settings.database_url)
        learned.attach(db, connectors)  # start from what the apps were found not to do
        return cls(settings, db, ctx, connectors, hr_sources)

    # -- API -------------------------------------------------------------------------------------
    def create_app(self) -> FastAPI:
        app = create_app(self.settings, self.db, on_events_accepted=self._events_ready.set,
                         on_identity_changed=self.identity_changed, target_halts=self.target_halts,
                         hr_sources=self.hr_sources)
        app.state.planning = self.ctx
        app.state.wake_worker = self.worker.wake  # a decision planned work: run it now
        app.state.connectors = self.connectors  # the console's "reconcile now" and "fix selected"
        return app

    def target_halts(self) -> dict[str, datetime | None]:
        """Each target and until when this process's workers hold it halted (None: not halted)."""
        return {target: self.worker.halted_until.get(target) for target in self.connectors}

    def identity_changed(self, session: Session, identity_id: str, trigger: str) -> None:
        """Re-plan a person changed outside HR (for example through SCIM)."""
        identity = identities.get(session, identity_id)
        if identity is not None:
            plan_identity(session, self.ctx, identity, trigger=trigger, previous_state=identity.state)
        self.worker.wake()

    # -- policy rollouts (provisioner/rollouts) ---------------------------------------------------
    async def start(self, stop: asyncio.Event | None = None) -> RolloutResult | None:
        """On start: a policy set not applied before re-plans everyone it affects, once across
        processes. Failures are logged (the next start or reload tries again), never raised."""
        return await self._roll_out(rollouts.roll_out, self.db, self.ctx, self.settings, trigger="start",
                                    should_stop=stop.is_set if stop is not None else None)

    async def reload_policies(self, trigger: str = "sighup") -> RolloutResult | None:
        """Read the policy files into this process's PlanningContext and roll the change out."""
        return await self._roll_out(rollouts.reload_policies, self.db, self.ctx, self.settings, trigger=trigger)

    def reload_on_sighup(self) -> None:
        """``provisioner serve``: SIGHUP reloads the policy files (see :meth:`reload_policies`)."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task] = set()

        def _reload() -> None:
            task = loop.create_task(self.reload_policies("sighup"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, _reload)

    async def _roll_out(self, fn, *args, **kw) -> RolloutResult | None:
        try:
            result = await asyncio.to_thread(fn, *args, **kw)
        except ConfigError as exc:
            log.error("policy reload refused, the running policies stay: %s", "; ".join(exc.problems),
                      extra={"alert": "policy_reload_refused"})
            return None
        except Exception:
            log.exception("policy rollout failed; the next start or reload tries again",
                          extra={"alert": "policy_rollout_failed"})
            return None
        if result.replanned:
            self.worker.wake()
        return result

    # -- jobs ------------------------------------------------------------------------------------
    async def process_events(self, stop: asyncio.Event | None = None) -> ProcessStats:
        """Apply due HR events; a set ``stop`` ends the run within a batch."""
        stats = await asyncio.to_thread(process_due, self.db, self.ctx,
                                        should_stop=stop.is_set if stop is not None else None)
        if stats.applied:
            self.worker.wake()
        return stats

    async def expire_access(self) -> int:
        """End approvals and SoD exceptions whose time is up; the planner revokes the access."""
        if not rules_for(self.ctx).active:
            return 0

        def job() -> int:
            with self.db.transaction() as session:
                return expire_due(session, self.ctx, utcnow())

        ended = await asyncio.to_thread(job)
        if ended:
            self.worker.wake()
        return ended

    async def settle_holds(self) -> int:
        """Held work added to a set as it was being decided follows the decision
        (:func:`provisioner.change_control.holds.service.settle_stragglers`)."""

        def job() -> int:
            with self.db.transaction() as session:
                return settle_stragglers(session, utcnow())

        settled = await asyncio.to_thread(job)
        if settled:
            self.worker.wake()
        return settled

    async def pull_snapshots(self, name: str | None = None) -> list[snapshots.Scan]:
        """Scan the drop folder of each HR source with a ``snapshot`` section (or of ``name``):
        new files applied once, bad ones moved aside (provisioner/hr_sources/snapshots)."""
        scans = []
        for source in snapshots.with_snapshots(self.hr_sources):
            if name is None or source.name == name:
                scans.append(await asyncio.to_thread(snapshots.scan, self.db, self.settings, source))
        if any(scan.stored for scan in scans):
            self._events_ready.set()
        return scans

    async def drain(self, *, max_wait: float = 60.0, loops: int | None = None) -> None:
        """Apply due events and run the queue until nothing more is ready now."""
        loops = loops or self.settings.worker_concurrency
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while loop.time() < deadline:
            expired = await self.expire_access()
            stats = await self.process_events()
            ran = 0
            while loop.time() < deadline:
                counts = await asyncio.gather(*(self.worker.run_once() for _ in range(loops)))
                if not sum(counts):
                    if not self.worker.held_for():
                        break
                    await asyncio.sleep(min(self.worker.held_for(), 0.1))  # held group additions
                ran += sum(counts)
            if stats.total == 0 and ran == 0 and not expired:
                return

    async def _event_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.process_events(stop)
            except Exception:
                log.exception("processing HR events failed; will retry")
            self._events_ready.clear()
            try:
                await asyncio.wait_for(self._events_ready.wait(), self.settings.due_events_seconds)
            except TimeoutError:
                pass

    def log_audit_anchor(self) -> None:
        """The audit chain's head as a log line: an anchor outside the database that
        ``provisioner audit verify --anchor SEQ:HASH`` checks the chain against."""
        with self.db.transaction() as session:
            head = read_head(session)
        audit_log.info("audit anchor: head %s", head.anchor,
                       extra={"audit_head_seq": head.seq, "audit_head_hash": head.hash, "audit_key_id": head.key_id})
        if head.key_id is not None and chain_key() is None:
            audit_log.error("PROVISIONER_AUDIT_KEY is not set but the audit chain was written with a key "
                            "(key id %s): records appended now are not keyed", head.key_id,
                            extra={"alert": "audit_key_missing"})

    async def run_background(self, stop: asyncio.Event, *, events: bool = True, reconcile: bool = True,
                             snapshot_pulls: bool | None = None) -> None:
        """The worker, the HR event loop (``events``) and the scheduled jobs; snapshot pulls run
        with the event loop unless ``snapshot_pulls`` says otherwise."""
        scheduler = AsyncIOScheduler(timezone="UTC")
        if reconcile:
            async def _reconcile() -> None:  # one at a time across processes (reconcile/schedule.py)
                await scheduled_reconcile(self.db, self.ctx, self.connectors, self.settings)
            scheduler.add_job(_reconcile, "interval", minutes=self.settings.reconcile_minutes,
                              id="reconcile", max_instances=1, coalesce=True)
        if self.settings.audit_anchor_minutes > 0:
            async def _anchor() -> None:
                await asyncio.to_thread(self.log_audit_anchor)
            scheduler.add_job(_anchor, "interval", minutes=self.settings.audit_anchor_minutes, id="audit_anchor",
                              max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
        async def _expiry() -> None:
            try:
                await self.expire_access()
                await self.settle_holds()
            except Exception:
                log.exception("ending expired approvals or settling decided holds failed; will retry")
        scheduler.add_job(_expiry, "interval", seconds=self.settings.change_control_expiry_seconds,
                          id="change_control_expiry", max_instances=1, coalesce=True)
        if events if snapshot_pulls is None else snapshot_pulls:
            self._schedule_snapshot_pulls(scheduler)
        scheduler.start()
        try:
            tasks = [self.worker.run_forever(stop)]
            if events:
                tasks.append(self._event_loop(stop))
            await asyncio.gather(*tasks)
        finally:
            scheduler.shutdown(wait=False)

    def _schedule_snapshot_pulls(self, scheduler: AsyncIOScheduler) -> None:
        """One job per HR source with a ``snapshot`` section, every ``snapshot.every`` (or
        ``hr_snapshot_poll_seconds``), the first at start; processes take turns per folder."""
        for source in snapshots.with_snapshots(self.hr_sources):
            assert source.snapshot is not None

            async def _pull(name: str = source.name) -> None:
                try:
                    await self.pull_snapshots(name)
                except Exception:
                    log.exception("pulling HR snapshot files of %s failed; will retry", name,
                                  extra={"alert": "hr_snapshot_error", "hr_source": name})
            every = source.snapshot.interval_seconds or self.settings.hr_snapshot_poll_seconds
            scheduler.add_job(_pull, "interval", seconds=every, id=f"hr_snapshots:{source.name}",
                              max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))

    def request_stop(self, stop: asyncio.Event) -> None:
        """SIGTERM/SIGINT: set ``stop`` and wake what waits for work, so nothing new is started
        (the worker finishes or gives back its rounds: ``Worker.run_forever``)."""
        stop.set()
        self.worker.wake()
        self._events_ready.set()

    async def aclose(self) -> None:
        for connector in self.connectors.values():
            await connector.aclose()
        self.db.dispose()
