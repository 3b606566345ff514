"""Scrape-time gauges of change control (``GET /metrics``; alert rules in
deploy/prometheus/alerts.yml): what waits for a decision and since when, and who holds a
separation-of-duties conflict now."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.orm import Session

from provisioner.change_control import approvals_repository as repository
from provisioner.change_control.approvals_gate import rules_for
from provisioner.change_control.sod_service import held_conflicts
from provisioner.clock import utcnow


def families(session: Session, ctx: Any) -> list[GaugeMetricFamily]:
    now = utcnow()
    stats = repository.pending_stats(session)
    pending = GaugeMetricFamily("provisioner_approvals_pending",
                                "Grants waiting for a decision: kind approval (sensitive access) or sod "
                                "(blocked by separation of duties)", labels=["kind"])
    oldest = GaugeMetricFamily("provisioner_approvals_pending_oldest_age_seconds",
                               "How long the oldest grant of each kind has waited for a decision; 0 when none",
                               labels=["kind"])
    for kind, (count, since) in sorted(stats.items()):
        pending.add_metric([kind], count)
        oldest.add_metric([kind], 0.0 if since is None else max((now - since).total_seconds(), 0.0))
    held = held_conflicts(session, ctx) if ctx is not None and rules_for(ctx).conflicts else []
    conflicts = GaugeMetricFamily("provisioner_sod_conflicts",
                                  "People holding two groups of a separation-of-duties rule now, by whether an "
                                  "exception allows it", labels=["excepted"])
    conflicts.add_metric(["false"], sum(not h["exception"] for h in held))
    conflicts.add_metric(["true"], sum(bool(h["exception"]) for h in held))
    return [pending, oldest, conflicts]
