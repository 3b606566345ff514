"""`make demo` is one of the two commands a newcomer runs: its story must keep holding."""

from __future__ import annotations

from provisioner.demo.story import run_demo


async def test_demo_story_holds_every_expectation():
    """Entra ID (Graph sandbox) and the wiki (scim2-server) end as the story says, read back."""
    assert await run_demo() == 0
