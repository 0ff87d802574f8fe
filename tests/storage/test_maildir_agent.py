"""The Maildir delivery agent: its wire format, batches with a failing member, both sync
methods, a Maildir that vanished, and an agent that dies under the server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.interfaces import StoredMessage
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRef
from mailhost.storage.maildir import MaildirStore
from mailhost.storage.maildir_agent import Delivery, _requests, request_header
from mailhost.storage.maildir_writer import AgentFailure

BOB = MailboxRef(1, EmailAddress.hosted("bob@example.com"), "b0" * 16)
ALICE = MailboxRef(2, EmailAddress.hosted("alice@example.com"), "a1" * 16)


def _frames(deliveries: list[Delivery]) -> bytes:
    return b"".join(
        request_header(i, d.maildir, d.name, len(d.message)) + bytes(d.message)
        for i, d in enumerate(deliveries)
    )


_deliveries = st.lists(
    st.builds(
        Delivery,
        st.builds(Path, st.text(st.characters(blacklist_characters="\0"), min_size=1)),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
        st.binary(max_size=300),
    ),
    max_size=6,
)


@given(deliveries=_deliveries, cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_requests_split_anywhere_are_read_back_whole_and_in_order(
    deliveries: list[Delivery], cuts: list[int]
) -> None:
    wire = _frames(deliveries)
    buffer = bytearray()
    found: list[tuple[int, Delivery]] = []
    edges = sorted({min(c, len(wire)) for c in cuts} | {len(wire)})
    start = 0
    for edge in edges:  # the bytes arrive in arbitrary pieces
        buffer += wire[start:edge]
        start = edge
        requests, used = _requests(buffer)
        del buffer[:used]
        found += requests
    assert buffer == b""
    assert [rid for rid, _ in found] == list(range(len(deliveries)))
    for (_, got), sent in zip(found, deliveries, strict=True):
        assert (got.maildir, got.name, bytes(got.message)) == (
            sent.maildir,
            sent.name,
            sent.message,
        )


async def test_concurrent_deliveries_to_several_mailboxes_all_land(store: MaildirStore) -> None:
    bodies = [f"message {i}\r\n".encode() for i in range(30)]
    boxes = [BOB if i % 2 else ALICE for i in range(30)]
    stored = await asyncio.gather(
        *(store.deliver(b, m) for b, m in zip(boxes, bodies, strict=True))
    )
    assert len({s.uid for s in stored}) == 30
    for box in (BOB, ALICE):
        assert len(await store.list(box)) == 15
        assert os.listdir(store.maildir_path(box) / "tmp") == []


async def test_a_failing_delivery_does_not_fail_the_rest_of_its_batch(store: MaildirStore) -> None:
    broken = store.maildir_path(ALICE)
    for sub in ("tmp", "cur"):
        (broken / sub).mkdir(parents=True)
    (broken / "new").write_bytes(b"")  # alice's new/ is a file: her rename must fail
    results = await asyncio.gather(
        store.deliver(BOB, b"one"),
        store.deliver(ALICE, b"lost"),
        store.deliver(BOB, b"two"),
        return_exceptions=True,
    )
    one, lost, two = results
    assert isinstance(lost, NotADirectoryError)
    assert isinstance(one, StoredMessage) and isinstance(two, StoredMessage)
    assert [s.uid for s in await store.list(BOB)] == [one.uid, two.uid]
    assert os.listdir(broken / "tmp") == []


async def test_a_maildir_removed_behind_the_agent_is_made_again(store: MaildirStore) -> None:
    await store.deliver(BOB, b"first")
    shutil.rmtree(store.maildir_path(BOB))  # the mailbox was removed and added again
    again = await store.deliver(BOB, b"second")
    assert [s.uid for s in await store.list(BOB)] == [again.uid]


async def test_deliveries_fail_when_the_agent_dies_and_the_next_one_starts_it_again(
    tmp_path: Path,
) -> None:
    store = MaildirStore(tmp_path / "mail")
    try:
        await store.deliver(BOB, b"before")
        agent = store._writer._agent
        assert agent is not None
        os.kill(agent.process.pid, signal.SIGSTOP)  # stuck: this delivery stays unanswered
        pending = asyncio.create_task(store.deliver(BOB, b"in flight"))
        await asyncio.sleep(0.2)
        os.kill(agent.process.pid, signal.SIGKILL)
        with pytest.raises(AgentFailure, match="went away"):
            await pending
        after = await store.deliver(BOB, b"after")
        assert [s.uid for s in await store.list(BOB)][-1] == after.uid
        assert len(await store.list(BOB)) == 2  # the one in flight was never stored
    finally:
        await store.close()


async def test_close_waits_for_the_deliveries_in_hand(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail")
    first = await store.deliver(BOB, b"starts the agent")
    deliveries = [asyncio.create_task(store.deliver(BOB, b"%d" % i)) for i in range(20)]
    await asyncio.sleep(0)  # every request is written; no reply has been read yet
    assert not any(task.done() for task in deliveries)
    await store.close()
    await store.close()  # twice is fine
    done = [task.result() for task in deliveries]  # all answered, none failed
    assert [s.uid for s in await store.list(BOB)] == [first.uid, *(s.uid for s in done)]


@pytest.mark.parametrize("argv", [[], ["3"], ["3", "sometimes"], ["3", "file", "extra"]])
def test_the_agent_run_by_hand_with_bad_arguments_says_how_to_run_it(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailhost.storage.maildir_agent", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "usage: python -m mailhost.storage.maildir_agent FD filesystem|file" in done.stderr
