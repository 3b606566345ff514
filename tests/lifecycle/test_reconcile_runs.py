"""Stored reconciliation runs (reconcile_runs, reconcile_drift): every run kept with its drift
items and what started it, only the last ones kept, values longer than the columns cut (both
engines); "fix selected" reports items no longer drifting and fixes through --fix's paths."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from provisioner.audit.models import AuditRecord
from provisioner.clock import clock, utcnow
from provisioner.reconcile import on_demand, repository, runs
from provisioner.reconcile.models import ReconcileDrift, ReconcileRun
from provisioner.reconcile.report import Drift, Kind, ReconcileReport
from provisioner.reconcile.schedule import scheduled_reconcile
from provisioner.reconcile.service import reconcile
from tests.console.reconcile_support import add_member, items, remove_member
from tests.support import EntraView, hire


async def test_scheduled_runs_are_stored_and_only_the_last_are_kept(service, entra: EntraView):
    await service.send(hire("d1", "D1", "Drift", "Er", "Engineering"))
    await service.drain()
    await add_member(service, "Finance", entra.remote_id("D1"))
    rt = service.runtime
    settings = service.settings.model_copy(update={"reconcile_runs_kept": 2, "reconcile_run_items_max": 1})
    ids = []
    for _ in range(3):
        report = await scheduled_reconcile(rt.db, rt.ctx, rt.connectors, settings)
        assert report is not None and report.run_id is not None
        ids.append(report.run_id)
        clock.advance(timedelta(hours=1))  # past the schedule's spacing
    with service.db.read() as session:
        kept = list(session.scalars(select(ReconcileRun).order_by(ReconcileRun.id)))
        assert [r.id for r in kept] == ids[1:]  # the oldest pruned, with its items
        assert session.scalar(select(func.count()).select_from(ReconcileDrift)
                              .where(ReconcileDrift.run_id == ids[0])) == 0
        run = kept[-1]
        assert (run.trigger, run.fix, run.drift, run.stored, run.targets) == ("schedule", False, 1, 1, ["entra", "wiki"])
        audited = session.scalars(select(AuditRecord).where(AuditRecord.kind == "reconcile.run")
                                  .order_by(AuditRecord.seq.desc())).first()
        assert (audited.data["run_id"], audited.data["trigger"]) == (run.id, "schedule")
    [(key, item)] = items(service, ids[-1]).items()
    assert key == ("member_added_elsewhere", "Finance") and item.employee_id == "D1" and item.fixed_at is None


async def test_a_fix_run_marks_its_items_fixed(service, entra: EntraView):
    await service.send(hire("d1", "D1", "Drift", "Er", "Engineering"))
    await service.drain()
    await remove_member(service, "GitHub Users", entra.remote_id("D1"))
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True, trigger="cli")
    await service.drain()
    assert "GitHub Users" in entra.groups("D1")
    item = items(service, report.run_id)[("member_removed_elsewhere", "GitHub Users")]
    assert item.fixed_by == "cli" and item.fixed_at is not None and item.action.startswith("re-planned")


def test_values_longer_than_the_columns_are_cut(db):
    """What a target says (a login, a display name, a group) can be longer than the columns."""
    long = Drift("entra", "G" * 300, Kind.UNKNOWN_MEMBER, "E" * 150, "R" * 250, login="l" * 400,
                 display_name="D" * 500, action="x" * 5000)
    report = ReconcileReport(drift=[long], errors=["e" * 3000])
    info = runs.RunInfo("console:" + "n" * 300, utcnow(), ["entra"])
    with db.transaction() as session:
        run_id = runs.store(session, report, info, fix=False, now=utcnow())
    with db.read() as session:
        run = session.get(ReconcileRun, run_id)
        [row] = session.scalars(select(ReconcileDrift).where(ReconcileDrift.run_id == run_id))
        assert len(run.trigger) == 200 and run.errors == ["e" * 3000]
        assert (len(row.group), len(row.employee_id), len(row.remote_id), len(row.login), len(row.display_name)) == \
            (200, 100, 200, 320, 400)
        assert row.action == "x" * 5000


async def test_fix_selected_reports_drift_that_is_gone_and_fixes_the_rest(service, entra: EntraView):
    await service.send(hire("d1", "D1", "Drift", "Er", "Engineering"))
    await service.drain()
    rid = entra.remote_id("D1")
    await add_member(service, "Finance", rid)
    await remove_member(service, "GitHub Users", rid)
    rt = service.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=False, trigger="schedule")
    stored = items(service, report.run_id)
    await remove_member(service, "Finance", rid)  # someone undid it by hand
    chosen = [stored[("member_added_elsewhere", "Finance")].id, stored[("member_removed_elsewhere", "GitHub Users")].id]
    fixed = await on_demand.fix_selected(rt.db, rt.ctx, rt.connectors, service.settings, report.run_id, chosen,
                                         "console:alice")
    assert [i for i, _ in fixed.gone] == chosen[:1] and [i for i, _ in fixed.fixed] == chosen[1:], fixed
    await service.drain()
    assert entra.groups("D1") == {"All Staff", "Employees", "Engineering", "GitHub Users"}
    after = items(service, report.run_id)
    assert after[("member_added_elsewhere", "Finance")].outcome.startswith("no longer drifting")
    with service.db.read() as session:
        new = session.get(ReconcileRun, fixed.new_run_id)
        assert (new.trigger, new.fix, new.selected, new.targets) == ("console:alice", True, True, ["entra"])
        # Not a whole run: the schedule's spacing counts the last whole one.
        assert repository.last_run_at(session) == session.get(ReconcileRun, report.run_id).finished_at
