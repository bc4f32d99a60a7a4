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


async def cancel_all(*tasks: asyncio.Task | None) -> None:
    """Cancel every task at once and wait for all of them, whatever each ends with.

    The one way to stop a component's tasks: their own cancellations and failures are absorbed (a stop
    must finish), a cancellation of the caller is raised as in :func:`cancel_and_wait`.
    """
    current = asyncio.current_task()
    live = [t for t in tasks if t is not None and t is not current]
    for task in live:
        task.cancel()
    if live:
        await asyncio.wait(live)
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
