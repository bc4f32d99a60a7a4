"""asyncio helpers every component needs."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait until it has finished (its cleanup included).

    Why not ``with suppress(CancelledError): await task``: that also swallows a cancellation of the
    *caller* arriving meanwhile (a stop() that is itself being cancelled, e.g. by a stop timeout), which
    then carries on as if nothing happened. Here the task's own cancellation is absorbed and the caller's
    is raised.
    """
    if task is None:
        return
    task.cancel()  # a task that has already finished keeps its result or exception, which await raises
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
