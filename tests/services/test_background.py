"""TaskSet: work nobody awaits is kept, drained, logged when it fails and stopped at shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mailhost.services.background import TaskSet


async def test_drain_waits_for_the_work_started_and_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("test work", limit=10)
    done: list[str] = []
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()
        done.append("slow")

    async def broken() -> None:
        raise RuntimeError("disk on fire")

    assert tasks.start(slow) and tasks.start(broken)
    assert len(tasks) == 2 and done == []
    gate.set()
    await tasks.drain()
    assert done == ["slow"] and len(tasks) == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "test work failed"
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])


async def test_a_full_set_starts_nothing_more() -> None:
    tasks = TaskSet("test work", limit=1)
    gate = asyncio.Event()
    started: list[int] = []

    async def work() -> None:
        started.append(1)
        await gate.wait()

    assert tasks.start(work)
    assert not tasks.start(work)  # not even a coroutine made: nothing is left unawaited
    gate.set()
    await tasks.drain()
    assert started == [1]


async def test_close_lets_quick_work_finish_cancels_the_rest_and_takes_no_more() -> None:
    tasks = TaskSet("test work", limit=10)
    finished: list[str] = []
    cancelled: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0)
        finished.append("quick")

    async def endless() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("endless")
            raise

    tasks.start(quick)
    tasks.start(endless)
    await tasks.close(grace=0.2)
    assert finished == ["quick"] and cancelled == ["endless"] and len(tasks) == 0
    assert not tasks.start(quick)
