"""The Prometheus alert rules shipped in deploy/prometheus/alerts.yml parse, are complete, and
every metric (and label) they name is served by GET /metrics (promtool is not available: the
names are checked against a real scrape)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support import event, hire

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
PROMQL_WORDS = {"max", "min", "sum", "avg", "count", "by", "without", "rate", "increase", "and", "or",
                "unless", "on", "ignoring", "bool", "offset", "absent", "time"}


def served(text: str) -> dict[str, set[str]]:
    """Sample name -> label names seen, from an exposition."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*?)\})?\s", line)
        assert match, line
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', match[3] or ""))
        out.setdefault(match[1], set()).update(labels)
    return out


def test_rules_parse_and_are_complete():
    doc = yaml.safe_load(RULES.read_text())
    [group] = doc["groups"]
    names = [rule["alert"] for rule in group["rules"]]
    assert len(names) == len(set(names))
    for wanted in ("ProvisionerTargetHalted", "ProvisionerFlowStopped", "ProvisionerDeadLetters",
                   "ProvisionerLeaversUnverified", "ProvisionerHREventsStalled"):
        assert wanted in names
    for rule in group["rules"]:
        assert rule["labels"]["severity"] in ("page", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


async def test_every_metric_and_label_the_rules_name_is_served(service):
    # Some work first, so the labelled counters (events, operations, calls) have samples.
    await service.send(hire("ar-1", "AR1", "Al", "Ert", "Sales"))
    await service.drain()
    await service.send(event("ar-2", "terminate", "AR1", immediate=True))
    await service.drain()
    exposed = served(await service.metrics())
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    for rule in rules:
        alert, expr = rule["alert"], rule["expr"]
        expr = re.sub(r'"[^"]*"', '""', expr)  # label values are not names
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
        grouping = [g.strip() for by in re.findall(r"\bby\s*\(([^)]*)\)", expr) for g in by.split(",")]
        expr = re.sub(r"\bby\s*\([^)]*\)", "", expr)
        metrics = []
        for name, selector in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
            if name in PROMQL_WORDS:
                continue
            assert name in exposed, f"{alert}: {name} is not served by /metrics"
            metrics.append(name)
            for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=~?", selector):
                assert label in exposed[name], f"{alert}: {name} has no label {label!r}"
        assert metrics, alert
        for label in grouping:
            assert any(label in exposed[m] for m in metrics), f"{alert}: no metric has the label {label!r}"
