"""GroupCommit: what queues up during a commit is committed together, each caller gets its own
outcome, and a failed commit fails exactly its batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost.batching import GroupCommit


class Recorder:
    """A commit that remembers its batches and can be held open or told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing: set[int] = set()  # items that fail alone
        self.broken = False  # the next commit raises

    async def __call__(self, batch: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(batch))
        await self.gate.wait()
        if self.broken:
            self.broken = False
            raise OSError("disk on fire")
        return [ValueError(f"item {i}") if i in self.failing else i * 10 for i in batch]


async def test_a_lone_item_is_committed_at_once() -> None:
    commit = Recorder()
    assert await GroupCommit(commit).submit(7) == 70
    assert commit.batches == [[7]]


async def test_items_queued_during_a_commit_form_the_next_batch() -> None:
    commit = Recorder()
    group = GroupCommit(commit)
    commit.gate.clear()
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)  # the first commit starts and waits on the gate
    rest = [asyncio.create_task(group.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    commit.gate.set()
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40]
    assert commit.batches == [[1], [2, 3, 4]]


async def test_an_item_that_fails_fails_alone() -> None:
    commit = Recorder()
    commit.failing = {2}
    group = GroupCommit(commit)
    results = await asyncio.gather(*(group.submit(i) for i in (1, 2, 3)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError) and str(results[1]) == "item 2"


async def test_a_commit_that_raises_fails_its_whole_batch_and_the_next_one_goes_on() -> None:
    commit = Recorder()
    commit.broken = True
    group = GroupCommit(commit)
    results = await asyncio.gather(*(group.submit(i) for i in (1, 2)), return_exceptions=True)
    assert [str(r) for r in results] == ["disk on fire", "disk on fire"]
    assert await group.submit(3) == 30


async def test_a_cancelled_caller_does_not_stop_its_item() -> None:
    commit = Recorder()
    commit.gate.clear()
    group = GroupCommit(commit)
    waiting = asyncio.create_task(group.submit(5))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    commit.gate.set()
    assert await group.submit(6) == 60
    assert commit.batches == [[5], [6]]  # 5 was committed all the same


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=8), min_size=1, max_size=6))
def test_every_item_is_committed_once_in_submission_order(waves: list[list[int]]) -> None:
    async def run() -> tuple[list[int], list[list[int]]]:
        commit = Recorder()
        group = GroupCommit(commit)
        tasks: list[asyncio.Task[int]] = []
        for wave in waves:  # each wave arrives while the previous commit is in flight
            tasks += [asyncio.create_task(group.submit(i)) for i in wave]
            await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks)), commit.batches

    results, batches = asyncio.run(run())
    items = [i for wave in waves for i in wave]
    assert results == [i * 10 for i in items]
    assert [i for batch in batches for i in batch] == items
