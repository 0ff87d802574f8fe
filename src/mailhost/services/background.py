"""Work a service starts without waiting for it: kept until it ends, stopped at shutdown.

STYLE.md rule 9: every task has an owner. A `TaskSet` is that owner for work
that must not hold up an answer (a forgot-password request must answer before
the lookup and the mail, or its timing tells who exists). Nobody awaits such a
task, so its failures are logged here; runtime closes the set on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("mailhost")


class TaskSet:
    def __init__(self, name: str, *, limit: int) -> None:
        self._name = name
        self._limit = limit  # more at once than this means a flood: those are dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run `work()` in a task of its own; False, with nothing started, if closed or full."""
        if self._closed or len(self._tasks) >= self._limit:
            return False
        task = asyncio.create_task(self._logged(work), name=self._name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _logged(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            log.exception("%s failed", self._name)

    async def drain(self) -> None:
        """Wait until every task started so far, and any started meanwhile, has ended."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, grace: float) -> None:
        """Start nothing more; give running tasks `grace` seconds to end, then cancel them."""
        self._closed = True
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("%s: cancelled %d unfinished at shutdown", self._name, len(late))
            await asyncio.wait(late)
