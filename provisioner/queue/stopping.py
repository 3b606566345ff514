"""A graceful stop of the worker: once ``stop`` is set nothing new is claimed; rounds under way
may go on calling their targets for ``stop_grace_seconds``, then they are cut short (``hurry``):
the outcomes they have are recorded and the rest goes back to the queue (``Worker._release``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)


async def until_stopped(work: asyncio.Future, stop: asyncio.Event, *, grace: float, wake: asyncio.Event,
                        hurry: asyncio.Event) -> None:
    """Wait for the worker loops (``work``); once ``stop`` is set, wake the idle ones (they end
    at once) and give the busy ones ``grace`` seconds before hurrying them."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            wake.set()  # idle loops end now
            await asyncio.wait({work}, timeout=grace)
            if not work.done():
                log.info("stopping: rounds still calling their targets after %.0f s are cut short; "
                         "their outcomes so far are recorded, the rest goes back to the queue", grace)
                hurry.set()
        await work
    finally:
        stopped.cancel()


async def unless_hurried(call: Awaitable[None], hurry: asyncio.Event | None) -> bool:
    """Run a round's target calls to the end (True), or until the worker is stopping and out of
    patience (False: the calls are cancelled; what they settled stays in the report)."""
    task = asyncio.ensure_future(call)
    if hurry is None:
        await task
        return True
    hurried = asyncio.ensure_future(hurry.wait())
    try:
        await asyncio.wait({task, hurried}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hurried.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if asyncio.current_task().cancelling():  # (we are being cancelled ourselves)
            raise
    return False
