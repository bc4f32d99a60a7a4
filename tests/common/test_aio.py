"""cancel_and_wait: a stop() that cancels its task finishes the task's cleanup and keeps its own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from common.aio import cancel_and_wait


async def test_cancels_and_waits_for_the_tasks_cleanup() -> None:
    cleaned = []

    async def worker() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned.append(True)

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned == [True]
    await cancel_and_wait(None)
    await cancel_and_wait(task)  # already finished: nothing to do


async def test_a_crashed_task_still_reports_its_error() -> None:
    async def crash() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(crash())
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)


async def test_the_callers_own_cancellation_is_not_swallowed() -> None:
    """A stop() being cancelled (a stop timeout) while it waits for its task must end, not carry on."""
    carried_on = []

    async def slow_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.5)

    async def stop(task: asyncio.Task) -> None:
        await cancel_and_wait(task)
        carried_on.append(True)

    task = asyncio.create_task(slow_cleanup())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop(task))
    await asyncio.sleep(0.05)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert carried_on == []
    await asyncio.wait({task}, timeout=2)
