"""Group commit: callers queue items; one commit at a time takes everything queued so far.

A durable write (an fsync, a database transaction) costs nearly the same for one
item as for fifty. Paying it once per batch instead of once per caller is what
lets a mail server answer many connections at the speed of a few commits: an
idle system commits a lone item at once, and under load the batches grow by
themselves while the previous commit is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# What a commit gives back for each item of its batch, in order: a result or the
# failure of that item alone. A commit that raises fails its whole batch.
Commit = Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT | Exception]]]


class GroupCommit(Generic[ItemT, ResultT]):
    def __init__(self, commit: Commit[ItemT, ResultT]) -> None:
        self._commit = commit
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> ResultT:
        """The item's result once its batch is committed; raises the item's failure."""
        return await self.enqueue(item)

    def enqueue(self, item: ItemT) -> asyncio.Future[ResultT]:
        """`submit` without a coroutine of its own: the future of the item's result, for
        callers that start the commit and await it later (no task needed to run it).

        The future is the caller's alone: cancelling it does not take the item back
        (the batch may already be on disk, as a sender gone after DATA may still get
        its message) and touches no other caller.
        """
        done: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        return done

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            outcomes: Sequence[ResultT | Exception]
            try:
                outcomes = await self._commit([item for item, _ in batch])
            except Exception as exc:
                outcomes = [exc] * len(batch)
            except asyncio.CancelledError:  # shutting down: nobody is left hanging
                for _, done in (*batch, *self._pending):
                    done.cancel()
                raise
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if isinstance(outcome, Exception):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)
