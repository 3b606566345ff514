"""Scrape-time gauges for change control: open hold sets, their held operations and age per
target and cause, and policy rollouts waiting for an approver (alert rules:
deploy/prometheus/alerts.yml)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.orm import Session

from provisioner.change_control.holds import repository
from provisioner.rollouts import repository as rollouts


def families(session: Session, now: datetime) -> list[GaugeMetricFamily]:
    labels = ["target", "cause"]
    sets = GaugeMetricFamily("provisioner_holds_open", "Mass-change hold sets waiting for an approver")
    per = GaugeMetricFamily("provisioner_holds_open_sets", "Open hold sets per target and cause", labels=labels)
    ops = GaugeMetricFamily("provisioner_held_operations", "Operations held by open hold sets", labels=labels)
    age = GaugeMetricFamily("provisioner_holds_oldest_age_seconds",
                            "How long the oldest open hold set has waited for an approver", labels=labels)
    open_sets = sorted(repository.open_sets_summary(session))
    sets.add_metric([], len(open_sets))
    for target, cause, _, opened_at, held in open_sets:
        per.add_metric([target, cause], 1.0)
        ops.add_metric([target, cause], held)
        age.add_metric([target, cause], max(0.0, (now - opened_at).total_seconds()))
    pending = rollouts.pending(session)
    oldest = min((r.created_at for r in pending), default=None)
    waiting = GaugeMetricFamily("provisioner_rollouts_pending", "Policy rollouts awaiting approval")
    waiting.add_metric([], len(pending))
    waited = GaugeMetricFamily("provisioner_rollouts_pending_oldest_age_seconds",
                               "How long the oldest rollout awaiting approval has waited; 0 when none")
    waited.add_metric([], 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()))
    return [sets, per, ops, age, waiting, waited]
