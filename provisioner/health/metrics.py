"""Gauges computed at scrape time from bounded queries (``repository``), beside the counters the
processor, the worker and the connectors keep (``provisioner_hr_events_total``,
``provisioner_operations_total``, ``provisioner_target_calls_total``). The alert rules shipped in
``deploy/prometheus/alerts.yml`` use these names."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily

from provisioner.health.service import Snapshot

STATUSES = ("pending", "waiting", "running", "held", "succeeded", "dead", "cancelled")


def _gauge(name: str, doc: str, value: float | None, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), 0.0 if value is None else value)
    return family


def families(snap: Snapshot) -> list[GaugeMetricFamily]:
    queue = GaugeMetricFamily("provisioner_queue_operations", "Operations in the queue by status",
                              labels=["status"])
    for status in STATUSES:
        queue.add_metric([status], snap.operations_by_status.get(status, 0))
    halted = GaugeMetricFamily("provisioner_target_halted",
                               "1 while the workers of this process hold the target halted (401/403)",
                               labels=["target"])
    for target in sorted(snap.halts):
        halted.add_metric([target], 1.0 if target in snap.halted else 0.0)
    readbacks = GaugeMetricFamily("provisioner_readbacks_failed",
                                  "Leavers' read-backs dead-lettered with access remaining after the last round, "
                                  "per target ('provisioner ops list --dead'; cleared by a replay that verifies)",
                                  labels=["target"])
    for target in sorted(set(snap.halts) | set(snap.failed_readbacks)):
        readbacks.add_metric([target], snap.failed_readbacks.get(target, 0))
    return [
        queue, halted, readbacks,
        _gauge("provisioner_queue_oldest_open_age_seconds",
               "Age of the oldest operation not finished (pending, waiting or running); 0 when none",
               snap.age(snap.open_operations)),
        _gauge("provisioner_dead_letters", "Dead-lettered operations waiting for a person (ops replay)",
               snap.dead_letters),
        _gauge("provisioner_leavers_unverified",
               "Terminated people whose revocation is not finished and read back (open or dead work)",
               snap.unverified_leavers.count),
        _gauge("provisioner_leavers_unverified_oldest_age_seconds",
               "How long the oldest unverified leaver's revocation has waited; 0 when none",
               snap.age(snap.unverified_leavers)),
        _gauge("provisioner_hr_events_due", "Pending HR events whose effective time has come",
               snap.due_events.count),
        _gauge("provisioner_hr_events_due_oldest_age_seconds",
               "How long the oldest due HR event has waited for the processor; 0 when none",
               snap.age(snap.due_events)),
    ]


class _Once:
    def __init__(self, snap: Snapshot, extra: Sequence[GaugeMetricFamily]) -> None:
        self.snap, self.extra = snap, extra

    def collect(self):
        return [*families(self.snap), *self.extra]


def exposition(snap: Snapshot, extra: Sequence[GaugeMetricFamily] = ()) -> bytes:
    """The process's registry (counters, histograms) followed by the scrape-time gauges
    (``extra``: other packages' scrape-time gauges, e.g. change control's)."""
    return generate_latest(REGISTRY) + generate_latest(_Once(snap, extra))  # type: ignore[arg-type]
