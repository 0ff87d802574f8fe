"""DATA on the MX and the submission listeners over real sockets on 127.0.0.1.

The end of the data however TCP splits it, empty messages, the line and size limits
(refused only after the end), bare line endings that end nothing, commands pipelined
behind the end, a client gone in the middle, and the idle timeout meanwhile. The
server is the real one with the real services, database (SQLite) and Maildir.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import itertools
import logging
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from mailhost.logs import EVENT_ATTRIBUTE, FIELDS_ATTRIBUTE
from mailhost.runtime import Runtime
from mailhost.smtp.admission import Admission, SessionLimits
from mailhost.smtp.message_reader import CHUNK
from tests.smtp import dialogue
from tests.smtp.dialogue import REPLY_TIMEOUT, stuffed
from tests.smtp.listening import Kind, listening
from tests.smtp.test_limits import (
    ALICE,
    BOB,
    DOMAIN,
    HOSTNAME,
    OP,
    PW,
    SERVER_NAME,
    hosted,
    settings,
)

__all__ = ["hosted", "settings"]  # the fixtures, shared with test_limits (so is its world)

SIZE = 50_000  # the listeners' max_message_size
HEADER = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: s\r\n\r\n"
MESSAGE = HEADER + b"Hello Bob,\r\n.a line that starts with a dot\r\n..\r\n.\r\nbye\r\n"
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as \S+")
TOO_LONG = "500 5.6.0 message line longer than 998 octets"
TOO_BIG = "552 5.3.4 message size exceeds fixed limit"
# What the MX and submission put before the content: Return-Path, Delivered-To, Received.
TRACE = re.compile(rb"(?:(?:Return-Path|Delivered-To|Received): [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*)+")
PAUSE = 0.01  # between TCP segments, so the server reads them one by one

KINDS: list[Kind] = ["mx", "submission", "submissions"]


class Dialogue(dialogue.Dialogue):
    async def send(self, *segments: bytes) -> None:
        """Each segment on its own, a moment after the one before."""
        for segment in segments:
            self.writer.write(segment)
            await self.writer.drain()
            await asyncio.sleep(PAUSE)

    async def octet_by_octet(self, octets: bytes) -> None:
        await self.send(*(octets[i : i + 1] for i in range(len(octets))))

    async def transaction(self, kind: Kind) -> None:
        """MAIL and RCPT to bob; DATA is the test's."""
        sender = "a@remote.test" if kind == "mx" else "alice@example.com"
        await self.say(f"MAIL FROM:<{sender}>", "250 2.1.0")
        await self.say("RCPT TO:<bob@example.com>", "250 2.1.5")


@dataclass
class Listener:
    kind: Kind
    port: int
    sessions: Admission
    trust: ssl.SSLContext

    async def open(self) -> Dialogue:
        """Connected (TLS from the start on the 465-style port), greeting not read yet."""
        implicit = self.kind == "submissions"
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            self.port,
            ssl=self.trust if implicit else None,
            server_hostname=SERVER_NAME if implicit else None,
        )
        return Dialogue(reader, writer, HOSTNAME)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Dialogue]:
        """Greeted, EHLO'd, and on submission encrypted and logged in as alice."""
        smtp = await self.open()
        try:
            await smtp.greeting()
            await smtp.ehlo()
            if self.kind == "submission":
                await smtp.say("STARTTLS", "220 2.0.0")
                await smtp.writer.start_tls(self.trust, server_hostname=SERVER_NAME)
                await smtp.ehlo()
            if self.kind != "mx":
                token = base64.b64encode(f"\0{ALICE}\0{PW}".encode()).decode()
                await smtp.say(f"AUTH PLAIN {token}", "235 2.7.0")
            yield smtp
        finally:
            await smtp.close()

    async def closed(self) -> None:
        """Until the server has let every session go."""
        async with asyncio.timeout(REPLY_TIMEOUT):
            while self.sessions.live:
                await asyncio.sleep(PAUSE)


Start = Callable[..., Awaitable[Listener]]


@pytest.fixture
async def start(hosted: Runtime) -> AsyncIterator[Start]:
    async with listening(hosted, HOSTNAME) as on:

        async def start(kind: Kind, *, idle_timeout: float = 30.0) -> Listener:
            sessions = Admission(SessionLimits())
            port = await on.start(kind, sessions, max_message_size=SIZE, idle_timeout=idle_timeout)
            return Listener(kind, port, sessions, on.trust)

        yield start


async def contents(runtime: Runtime) -> list[bytes]:
    """bob's messages without the trace the server put before them, and delete them."""
    mailboxes = await runtime.services.users.mailboxes(OP, DOMAIN)
    ref = next(m for m in mailboxes if m.address == BOB).ref
    found: list[bytes] = []
    listed = await runtime.store.list(ref)
    for message in listed:
        stored = b"".join([chunk async for chunk in runtime.store.read(ref, message.uid)])
        trace = TRACE.match(stored)
        assert trace is not None, stored[:300]
        found.append(stored[trace.end() :])
    await runtime.store.delete(ref, [message.uid for message in listed])
    return sorted(found)


def sized(size: int) -> bytes:
    """A message of exactly `size` octets as sent (dot-stuffed), in lines of 80."""
    line = b"x" * 78 + b"\r\n"
    count, rest = divmod(size - len(HEADER), len(line))
    if rest == 1:  # no line is one octet long
        count, rest = count - 1, rest + len(line)
    last = b"y" * (rest - 2) + b"\r\n" if rest else b""
    content = HEADER + line * count + last
    assert len(stuffed(content)) == size
    return content


@pytest.mark.parametrize("kind", KINDS)
async def test_the_end_split_at_every_octet_still_ends_the_message(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    listener = await start(kind)
    stream = stuffed(MESSAGE) + b".\r\n"
    async with listener.session() as smtp:
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        # The start octet by octet (where the DATA line's CRLF counts), then the end.
        await smtp.octet_by_octet(stream[:4])
        await smtp.send(stream[4:-8])
        await smtp.octet_by_octet(stream[-8:])
        [line] = await smtp.reply()
        assert QUEUED.fullmatch(line), line
        # Every cut of the end into two segments, one message each.
        for cut in range(1, 8):
            await smtp.transaction(kind)
            await smtp.say("DATA", "354 ")
            await smtp.send(stream[:-cut], stream[-cut:])
            [line] = await smtp.reply()
            assert QUEUED.fullmatch(line), (cut, line)
    assert await contents(hosted) == [MESSAGE] * 8


_LINES = st.sampled_from([b"", b".", b"..", b".x", b"a.b", b"x" * 200, b"." + b"y" * 997])


@st.composite
def messages_in_segments(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A message (dots at line starts, an empty one now and then), and its DATA stream
    with a pipelined NOOP behind the end, cut into segments anywhere."""
    content = b"".join(line + b"\r\n" for line in draw(st.lists(_LINES, max_size=12)))
    stream = stuffed(content) + b".\r\nNOOP\r\n"
    cuts = draw(st.lists(st.integers(1, len(stream) - 1), max_size=10))
    points = sorted({0, len(stream), *cuts})
    return content, [stream[a:b] for a, b in itertools.pairwise(points)]


def _blocking_transaction(port: int, segments: list[bytes]) -> list[str]:
    """One MX transaction on a plain blocking socket; the replies after the 354."""
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = sock.makefile("rb")
        commands = [b"HELO client.test", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<bob@example.com>"]
        assert lines.readline().startswith(b"220 ")
        for command in [*commands, b"DATA"]:
            sock.sendall(command + b"\r\n")
            assert lines.readline()[:1] in (b"2", b"3")
        for segment in segments:
            sock.sendall(segment)
            time.sleep(0.001)
        return [lines.readline().decode("ascii").rstrip("\r\n") for _ in range(2)]


async def test_any_message_in_any_segments_is_stored_unstuffed(
    start: Start, hosted: Runtime
) -> None:
    mx = await start("mx")
    loop = asyncio.get_running_loop()

    # Hypothesis drives a blocking client in a thread while this loop serves.
    @hypothesis.settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(messages_in_segments())
    def check(example: tuple[bytes, list[bytes]]) -> None:
        content, segments = example
        queued, noop = _blocking_transaction(mx.port, segments)
        assert QUEUED.fullmatch(queued), queued
        assert noop == "250 2.0.0 Ok"
        stored = asyncio.run_coroutine_threadsafe(contents(hosted), loop).result(REPLY_TIMEOUT)
        assert stored == [content]

    await asyncio.to_thread(check)


@pytest.mark.parametrize("kind", KINDS)
async def test_an_empty_message_ends_at_once_and_what_follows_is_a_command(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    listener = await start(kind)
    async with listener.session() as smtp:
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        smtp.writer.write(b".\r\nNOOP\r\n")
        [queued] = await smtp.reply()
        assert QUEUED.fullmatch(queued), queued
        assert await smtp.reply() == ["250 2.0.0 Ok"]
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        await smtp.octet_by_octet(b".\r\n")
        [queued] = await smtp.reply()
        assert QUEUED.fullmatch(queued), queued
    assert await contents(hosted) == [b"", b""]


@pytest.mark.parametrize("kind", KINDS)
async def test_lines_of_1001_octets_pass_and_longer_ones_are_refused_after_the_end(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    # Octets as sent, CRLF included; aiosmtpd's one octet over RFC 5321's 1000 (for the
    # transparency dot) is kept, on any line.
    sent = {
        b"x" * 998 + b"\r\n": b"x" * 998 + b"\r\n",  # 1000
        b"x" * 999 + b"\r\n": b"x" * 999 + b"\r\n",  # 1001
        b"." + b"x" * 998 + b"\r\n": b"x" * 998 + b"\r\n",  # 1001, dot-stuffed
        b"x" * 1000 + b"\r\n": None,  # 1002
        b".." + b"x" * 998 + b"\r\n": None,  # 1002, dot-stuffed
        b"x" * (3 * CHUNK) + b"\r\n": None,  # over several chunks, and over SIZE too
    }
    listener = await start(kind)
    async with listener.session() as smtp:
        for line, kept in sent.items():
            await smtp.transaction(kind)
            await smtp.say("DATA", "354 ")
            await smtp.send(HEADER + line + b"end\r\n.\r\n")
            [reply] = await smtp.reply()
            if kept is None:
                assert reply == TOO_LONG, len(line)
            else:
                assert QUEUED.fullmatch(reply), (len(line), reply)
        await smtp.say("NOOP", "250 2.0.0 Ok")  # the session goes on after a refusal
    expected = [HEADER + kept + b"end\r\n" for kept in sent.values() if kept is not None]
    assert await contents(hosted) == sorted(expected)


@pytest.mark.parametrize("kind", KINDS)
async def test_size_is_counted_as_sent_and_refused_after_the_end(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    at_limit = sized(SIZE)
    # Two dot-stuffed lines: 49,999 octets once unstuffed, 50,001 as sent.
    stuffing = sized(SIZE - 7) + b".\r\n.\r\n"
    assert len(stuffed(stuffing)) == SIZE + 1
    then_long = sized(SIZE + 100) + b"x" * 2000 + b"\r\n"  # the size breaks first
    refused = [sized(SIZE + 1), stuffing, sized(4 * CHUNK), then_long]
    listener = await start(kind)
    async with listener.session() as smtp:
        await smtp.transaction(kind)
        line = await smtp.data(at_limit, "250 2.0.0")
        assert QUEUED.fullmatch(line), line
        for content in refused:
            await smtp.transaction(kind)
            await smtp.data(content, TOO_BIG)
        await smtp.say("NOOP", "250 2.0.0 Ok")
    assert await contents(hosted) == [at_limit]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_refusal_at_the_end_of_the_data_is_logged_like_any_other(
    start: Start, caplog: pytest.LogCaptureFixture, kind: Kind
) -> None:
    listener = await start(kind)
    with caplog.at_level(logging.INFO, logger="mailhost.smtp"):
        async with listener.session() as smtp:
            await smtp.transaction(kind)
            await smtp.data(HEADER + b"x" * 1000 + b"\r\n", TOO_LONG)
            await smtp.transaction(kind)
            await smtp.data(sized(SIZE + 1), TOO_BIG)
    refusals = [
        getattr(record, FIELDS_ATTRIBUTE)
        for record in caplog.records
        if getattr(record, EVENT_ATTRIBUTE, None) == "refused"
    ]
    assert [(fields["stage"], fields["reply"]) for fields in refusals] == [
        ("DATA", TOO_LONG),
        ("DATA", TOO_BIG),
    ]
    assert all(fields["client"] == "127.0.0.1" for fields in refusals)


@pytest.mark.parametrize("kind", KINDS)
async def test_bare_line_endings_around_a_dot_end_nothing(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    # SMTP smuggling: what follows a fake end is data, never commands; the whole is
    # refused at the real end. The fake end comes octet by octet, the rest at once.
    smuggled = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nx\r\n"
    listener = await start(kind)
    async with listener.session() as smtp:
        for fake_end in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"):
            await smtp.transaction(kind)
            await smtp.say("DATA", "354 ")
            await smtp.send(HEADER + b"first")
            await smtp.octet_by_octet(fake_end)
            smtp.writer.write(smuggled + b".\r\nNOOP\r\n")
            assert await smtp.reply() == ["550 5.5.2 bare CR or LF in message not allowed"]
            assert await smtp.reply() == ["250 2.0.0 Ok"]
    assert await contents(hosted) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_commands_pipelined_behind_the_end_are_answered_in_order(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    listener = await start(kind)
    sender = "a@remote.test" if kind == "mx" else "alice@example.com"
    async with listener.session() as smtp:
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        smtp.writer.write(
            stuffed(MESSAGE)
            + f".\r\nMAIL FROM:<{sender}>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n".encode()
        )
        replies = [(await smtp.reply())[0] for _ in range(4)]
        assert QUEUED.fullmatch(replies[0]), replies
        assert [line[:9] for line in replies[1:]] == ["250 2.1.0", "250 2.1.5", "354 End d"]
        smtp.writer.write(stuffed(HEADER) + b".\r\nQUIT\r\n")
        [queued, bye] = await smtp.rest()
        assert QUEUED.fullmatch(queued), queued
        assert bye == "221 2.0.0 Bye"
    assert await contents(hosted) == [HEADER, MESSAGE]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("gone", ["closed", "reset"])
async def test_a_client_gone_in_the_middle_of_data_leaves_nothing(
    start: Start, hosted: Runtime, caplog: pytest.LogCaptureFixture, kind: Kind, gone: str
) -> None:
    listener = await start(kind)
    with caplog.at_level(logging.DEBUG):
        async with listener.session() as smtp:
            await smtp.transaction(kind)
            await smtp.say("DATA", "354 ")
            # A whole message and half an end: not the end.
            await smtp.send(stuffed(MESSAGE) + b"." + b"\r")
            if gone == "reset":
                smtp.writer.transport.abort()
        await listener.closed()
        gc.collect()  # a task that died with an exception says so when collected
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert await contents(hosted) == []
    async with listener.session() as smtp:  # the listener serves on
        await smtp.transaction(kind)
        await smtp.data(MESSAGE, "250 2.0.0")
    assert await contents(hosted) == [MESSAGE]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_slow_client_in_data_is_not_idle_but_a_silent_one_times_out(
    start: Start, hosted: Runtime, kind: Kind
) -> None:
    listener = await start(kind, idle_timeout=1.0)
    stream = stuffed(MESSAGE) + b".\r\n"
    async with listener.session() as smtp:
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        # Twice the idle timeout in all, a tenth of it between segments.
        steps = 20
        for i in range(steps):
            await asyncio.sleep(0.1)
            smtp.writer.write(stream[i * len(stream) // steps : (i + 1) * len(stream) // steps])
        [line] = await smtp.reply()
        assert QUEUED.fullmatch(line), line
        await smtp.transaction(kind)
        await smtp.say("DATA", "354 ")
        smtp.writer.write(stream[:50])
        assert await smtp.rest() == [f"421 4.4.2 {HOSTNAME} Error: timeout exceeded"]
    assert await contents(hosted) == [MESSAGE]


@pytest.mark.parametrize(
    ("kind", "before", "reply"),
    [
        ("mx", [], "503 5.5.1 Error: send HELO/EHLO first"),
        ("mx", ["EHLO client.test"], "554 5.5.1 no valid recipients"),
        ("submission", ["EHLO client.test"], "530 5.7.0 Must issue a STARTTLS command first"),
        ("submissions", [], "503 5.5.1 Error: send HELO/EHLO first"),
        ("submissions", ["EHLO client.test"], "530 5.7.0 Authentication required"),
    ],
)
async def test_data_out_of_order_is_refused_before_any_354(
    start: Start, kind: Kind, before: list[str], reply: str
) -> None:
    listener = await start(kind)
    smtp = await listener.open()
    try:
        await smtp.greeting()
        for command in before:
            smtp.writer.write(command.encode() + b"\r\n")
            await smtp.reply()
        await smtp.say("DATA", reply)
        await smtp.say("NOOP", "250 2.0.0 Ok")
    finally:
        await smtp.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_data_with_an_argument_or_without_recipients_gets_no_354(
    start: Start, kind: Kind
) -> None:
    listener = await start(kind)
    async with listener.session() as smtp:
        await smtp.say("DATA", "554 5.5.1 no valid recipients")
        await smtp.transaction(kind)
        await smtp.say("DATA now", "501 5.5.4 Syntax: DATA")
        await smtp.data(MESSAGE, "250 2.0.0")
