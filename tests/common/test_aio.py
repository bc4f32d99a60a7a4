"""cancel_and_wait: a stop() that cancels its task finishes the task's cleanup and keeps its own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from common.aio import cancel_all, cancel_and_wait


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


async def test_cancel_all_stops_every_task_whatever_it_ends_with() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def crashed() -> None:
        raise RuntimeError("boom")

    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)
            done.append("cleaned up")

    done: list[str] = []
    tasks = [asyncio.create_task(c()) for c in (forever, crashed, slow_cleanup)]
    await asyncio.sleep(0)
    await cancel_all(*tasks, None)
    assert all(t.done() for t in tasks) and done == ["cleaned up"]


async def test_cancel_all_passes_on_the_callers_cancellation() -> None:
    inner = asyncio.create_task(asyncio.sleep(3600))

    async def stopper() -> None:
        await cancel_all(inner)
        await asyncio.sleep(3600)  # reached only if the caller's cancellation was swallowed

    outer = asyncio.create_task(stopper())
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
