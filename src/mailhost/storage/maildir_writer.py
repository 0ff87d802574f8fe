"""The server's side of the Maildir delivery agent (storage/maildir_agent.py).

`MaildirWriter.write` hands a delivery to the agent process and returns when the
agent says it is durable in `new/`. The agent starts with the first delivery and
again after it died; deliveries in flight when it dies fail (the SMTP edge
answers 451 and the sender retries), none is reported stored that is not.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from mailhost.settings import SyncMethod
from mailhost.storage.maildir_agent import (
    NOT_AN_OS_ERROR,
    REPLY,
    request_header,
    syncfs_available,
)

log = logging.getLogger("mailhost.maildir")


class AgentFailure(OSError):
    """The delivery agent could not store the message, or went away before saying so."""


@dataclass(frozen=True)
class _Agent:
    process: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    waiting: dict[int, asyncio.Future[None]]  # by request id
    replies: asyncio.Task[None]  # reads the replies until the agent goes away

    @property
    def alive(self) -> bool:
        return not self.replies.done()


class MaildirWriter:
    def __init__(self, method: SyncMethod) -> None:
        if method is SyncMethod.FILESYSTEM and not syncfs_available():
            log.warning("syncfs(2) is not available here; Maildir deliveries fsync each file")
            method = SyncMethod.FILE
        self._method = method
        self._agent: _Agent | None = None
        self._starting = asyncio.Lock()
        self._ids = itertools.count(1)

    async def write(self, maildir: Path, name: str, message: bytes) -> None:
        """Returns when the message is durable in `maildir`/new; raises OSError if it is not."""
        agent = await self._running()
        request_id = next(self._ids) & 0xFFFFFFFF
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        agent.waiting[request_id] = done
        # One write, so one send: two writes on an idle socket are two system calls.
        agent.writer.writelines((request_header(request_id, maildir, name, len(message)), message))
        try:
            await agent.writer.drain()
        except ConnectionError as error:
            agent.waiting.pop(request_id, None)
            raise AgentFailure(f"the Maildir delivery agent went away: {error}") from error
        # Shielded: a sender gone after DATA leaves the reply to nobody, not to a later id.
        await asyncio.shield(done)

    async def close(self) -> None:
        """Stop the agent after the deliveries it holds; safe to call more than once."""
        agent, self._agent = self._agent, None
        if agent is None:
            return
        if agent.alive:
            # Half-close: the agent reads to the end, replies to all, then exits.
            agent.writer.write_eof()
            await asyncio.gather(agent.replies, return_exceptions=True)
        agent.writer.close()
        await agent.process.wait()

    async def _running(self) -> _Agent:
        async with self._starting:
            if self._agent is None or not self._agent.alive:
                if self._agent is not None:
                    await self.close()
                self._agent = await self._start()
            return self._agent

    async def _start(self) -> _Agent:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mailhost.storage.maildir_agent",
                str(theirs.fileno()),
                self._method.value,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "PYTHONSAFEPATH": "1"},
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        waiting: dict[int, asyncio.Future[None]] = {}
        replies = asyncio.create_task(_read_replies(reader, waiting))
        return _Agent(process, writer, waiting, replies)


async def _read_replies(
    reader: asyncio.StreamReader, waiting: dict[int, asyncio.Future[None]]
) -> None:
    try:
        while True:
            header = await reader.readexactly(REPLY.size)
            request_id, number, length = REPLY.unpack(header)
            text = (await reader.readexactly(length)).decode(errors="replace")
            done = waiting.pop(request_id, None)
            if done is None or done.done():
                continue
            if number == 0:
                done.set_result(None)
            elif number == NOT_AN_OS_ERROR:
                done.set_exception(AgentFailure(text))
            else:  # OSError(errno, …) is the matching subclass: FileNotFoundError, ENOSPC, …
                done.set_exception(OSError(number, text))
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        gone = AgentFailure(f"the Maildir delivery agent went away ({error!r})")
        if waiting:
            log.error("Maildir delivery agent exited with %d deliveries unanswered", len(waiting))
        for done in waiting.values():
            if not done.done():
                done.set_exception(gone)
        waiting.clear()
