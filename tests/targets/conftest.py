"""Fixtures for the Entra connector: the real msgraph-sdk against the in-process Graph sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from provisioner.targets.entra.connector import EntraConnector
from tests.targets.entra_sandbox_helpers import DOMAIN, connector_for


@pytest.fixture
def graph_sandbox():
    """A fresh Graph v1.0 emulator (no throttling, pages of 100)."""
    from provisioner.sandbox.graph.app import GraphSandbox

    return GraphSandbox(scale=1.0, throttle=False, tenant_size=100, page_size=100, token=None,
                        verified_domains=[DOMAIN])


@pytest.fixture
def small_page_sandbox():
    """A sandbox that pages every 2 objects, to exercise @odata.nextLink following."""
    from provisioner.sandbox.graph.app import GraphSandbox

    return GraphSandbox(scale=1.0, throttle=False, tenant_size=100, page_size=2, token=None,
                        verified_domains=[DOMAIN])


@pytest.fixture
async def entra_over_sandbox(graph_sandbox) -> AsyncIterator[EntraConnector]:
    """The connector, through the real SDK stack, writing to ``graph_sandbox``."""
    connector = connector_for(graph_sandbox)
    yield connector
    await connector.aclose()


@pytest.fixture
async def dry_run_entra_over_sandbox(graph_sandbox) -> AsyncIterator[EntraConnector]:
    """The same connector with the dry-run transport: reads pass, writes are refused."""
    connector = connector_for(graph_sandbox, dry_run=True)
    yield connector
    await connector.aclose()


@pytest.fixture
def sandbox_group_and_45_users(graph_sandbox) -> tuple[str, list[str]]:
    """One empty group and 45 users who are not yet members of it."""
    group = graph_sandbox.seed_group("Engineering")
    users = [
        graph_sandbox.seed_user(f"user{i:02d}@example.test", display_name=f"User {i}", employee_id=f"E{i:03d}")
        for i in range(45)
    ]
    return group, users
