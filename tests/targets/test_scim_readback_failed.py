"""A leaver's read-back that keeps finding access is not only a log line: after the last round
the read-back is dead-lettered with what it found (``ops list --dead``), counted in the metrics,
alerted, and the evidence says not verified. The app: scim2-server behind a fault that answers
204 to every group write and applies none (it keeps the leaver in the group)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import utcnow
from provisioner.evidence import service as evidence
from provisioner.queue.models import Operation
from provisioner.queue.worker import MAX_VERIFY_ROUNDS
from provisioner.sandbox.scim.faults import FaultTransport
from provisioner.settings import get_settings
from tests.support import event, hire
from tests.targets.scim_helpers import WikiView, scim_service


def metric(text: str, name: str, target: str) -> float:
    found = re.search(rf'^{name}{{target="{target}"}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
async def ignoring_app(database_url, tmp_path, monkeypatch):
    """The service, with the wiki's scim2-server (no Bulk: each write its own request) behind
    a fault transport; the CLI pointed at the same database."""
    svc, log = scim_service(tmp_path, database_url, scim_options={"wiki": {"bulk": False}})
    log.inner = faults = FaultTransport(log.inner)
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(svc.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(svc.settings.targets_dir))
    get_settings.cache_clear()
    try:
        yield svc, faults
    finally:
        get_settings.cache_clear()
        await svc.close()


async def test_a_read_back_still_finding_access_is_dead_lettered_counted_and_alerted(ignoring_app, caplog):
    svc, faults = ignoring_app
    wiki = WikiView(svc)
    await svc.send(hire("k1", "K1", "Kept", "Inside", "Engineering"))
    await svc.drain()
    assert await wiki.groups("K1") == {"Wiki Readers", "Wiki Editors"}
    before = metric(await svc.metrics(), "provisioner_readbacks_failed_total", "wiki")
    # From now on the app accepts every group write and applies none.
    for method in ("PATCH", "PUT"):
        faults.script("ignore", times=10_000, method=method, path="/Groups/")
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        await svc.send(event("k2", "terminate", "K1"))
        await svc.drain()
    # Read back from the app: disabled, still in both groups.
    user = await wiki.user("K1")
    assert user["active"] is False
    assert await wiki.groups("K1") == {"Wiki Readers", "Wiki Editors"}
    with svc.db.read() as session:
        verifies = list(session.scalars(select(Operation).where(
            Operation.target == "wiki", Operation.kind == "verify_revoked").order_by(Operation.id)))
        session.expunge_all()
    # Every round is a read-back of its own; the earlier ones say what they found, the last is dead.
    assert [op.status for op in verifies] == ["succeeded"] * (MAX_VERIFY_ROUNDS - 1) + ["dead"]
    reason = "access remains after 3 rounds: still in groups Wiki Editors, Wiki Readers"
    assert verifies[-1].last_error == reason
    assert verifies[0].last_error.startswith("access remains (round 1 of 3): still in groups")
    # ops list --dead shows it with its reason.
    listing = CliRunner().invoke(app, ["ops", "list", "--dead"], catch_exceptions=False, terminal_width=400)
    assert listing.exit_code == 0
    assert "verify_revoked" in listing.output and reason in listing.output
    # The metrics: the scrape-time gauge per target, and the worker's counter.
    text = await svc.metrics()
    assert metric(text, "provisioner_readbacks_failed", "wiki") == 1.0
    assert metric(text, "provisioner_readbacks_failed", "entra") == 0.0
    assert metric(text, "provisioner_readbacks_failed_total", "wiki") == before + 1
    assert re.search(r"^provisioner_leavers_unverified 1\.0$", text, re.M)  # the leaver is not proven gone
    # The alert, once, with the operation.
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "revocation_unverified"]
    assert len(alerts) == 1 and alerts[0].op_id == verifies[-1].id and reason in alerts[0].getMessage()
    # The evidence: not verified, with what the last read-back found.
    with svc.db.transaction() as session:
        [record] = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    system = {s["target"]: s for s in record["systems"]}["wiki"]
    assert system["verified"] is False
    assert system["readback"]["groups_remaining"] == ["Wiki Editors", "Wiki Readers"]
