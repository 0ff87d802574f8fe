"""A real POP3 server on 127.0.0.1 with a real Maildir, driven by Python's poplib.

Plaintext login is allowed here (the localhost operator option); STLS and
implicit TLS are exercised by the TLS integration tests.
"""

from __future__ import annotations

import asyncio
import poplib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from mailhost.model.logins import Authenticated, AuthOutcome, BadCredentials, ClientInfo
from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord, MailboxRef
from mailhost.pop3.connection import REPORT_EVERY
from mailhost.pop3.listeners import Pop3Dependencies, start_pop3_server
from mailhost.storage.maildir import CHUNK, MaildirStore

BOB = EmailAddress.hosted("bob@example.com")
MAILBOX = MailboxRef(1, BOB, "b0" * 16)
LOGIN = LoginRecord(1, 1, 1, BOB, "$argon2id$unused", True, MAILBOX)
PASSWORD = "correct horse"
_T = TypeVar("_T")


class OneLogin:
    """The test's stand-in for the authentication service: one fixed login is valid."""

    def __init__(self) -> None:
        self.clients: list[ClientInfo] = []

    async def authenticate(self, login: str, password: str, client: ClientInfo) -> AuthOutcome:
        self.clients.append(client)
        if login == str(BOB) and password == PASSWORD:
            return Authenticated(LOGIN)
        return BadCredentials()


@dataclass
class Server:
    port: int
    store: MaildirStore
    authenticator: OneLogin
    retrieved: list[int] = field(default_factory=list)

    def client(self) -> poplib.POP3:
        return poplib.POP3("127.0.0.1", self.port, timeout=10)

    def login(self) -> poplib.POP3:
        pop = self.client()
        pop.user(str(BOB))
        pop.pass_(PASSWORD)
        return pop


async def _start(
    tmp_path: Path, *, max_connections: int = 1000, idle_timeout: float = 30.0
) -> tuple[asyncio.Server, Server]:
    store = MaildirStore(tmp_path / "mail")
    state = Server(0, store, OneLogin())

    async def on_retrieved(login: LoginRecord, nbytes: int) -> None:
        assert login == LOGIN
        state.retrieved.append(nbytes)

    deps = Pop3Dependencies(
        store=store,
        authenticator=state.authenticator,
        hostname="mail.example.com",
        allow_plaintext_auth=True,
        idle_timeout=idle_timeout,
        on_retrieved=on_retrieved,
    )
    server = await start_pop3_server(
        "127.0.0.1",
        0,
        implicit_tls=False,
        ssl_context=None,
        deps=deps,
        max_connections=max_connections,
    )
    state.port = server.sockets[0].getsockname()[1]
    return server, state


@pytest.fixture
async def pop3(tmp_path: Path) -> AsyncIterator[Server]:
    server, state = await _start(tmp_path)
    async with server:
        yield state
    await state.store.close()


async def _in_thread(work: Callable[[], _T]) -> _T:
    # poplib blocks; the server runs on this test's event loop.
    return await asyncio.to_thread(work)


async def _released(store: MaildirStore) -> None:
    """Wait until the server's session has let go of the mailbox."""
    for _ in range(200):
        try:
            async with store.exclusive(MAILBOX):
                return
        except Exception:
            await asyncio.sleep(0.02)
    pytest.fail("the POP3 session never released the mailbox")


LF_MESSAGE = b"Subject: lf\n\nfirst\n.dot line\n..two dots\n.\nno final newline"
BIG_MESSAGE = b"Subject: big\r\n\r\n" + (b".x" * 100 + b"\r\n") * (3 * CHUNK // 100)


async def test_poplib_session_lists_retrieves_and_deletes_on_quit(pop3: Server) -> None:
    first = await pop3.store.deliver(MAILBOX, b"Subject: one\r\nX: y\r\n\r\nbody 1\r\nbody 2\r\n")
    second = await pop3.store.deliver(MAILBOX, LF_MESSAGE)
    third = await pop3.store.deliver(MAILBOX, BIG_MESSAGE)

    def session() -> list[object]:
        pop = pop3.client()
        seen: list[object] = [pop.getwelcome(), pop.user(str(BOB)), pop.pass_(PASSWORD)]
        seen += [pop.stat(), pop.list()[1], pop.uidl()[1], pop.retr(2)[1], pop.top(1, 1)[1]]
        return [*seen, pop.retr(3)[1], pop.dele(1), pop.stat(), pop.quit()]

    seen, sizes = await _in_thread(session), [first.size, second.size, third.size]
    assert seen[:3] == [
        b"+OK mail.example.com POP3 ready",
        b"+OK send your password",
        b"+OK bob@example.com has 3 messages (%d octets)" % sum(sizes),
    ]
    assert seen[3:5] == [(3, sum(sizes)), [b"%d %d" % (n, size) for n, size in enumerate(sizes, 1)]]
    uids = [first.uid, second.uid, third.uid]
    assert seen[5] == [f"{n} {uid}".encode() for n, uid in enumerate(uids, 1)]
    assert seen[6] == LF_MESSAGE.split(b"\n")  # poplib undoes the dot-stuffing
    assert seen[7] == [b"Subject: one", b"X: y", b"", b"body 1"]
    assert seen[8] == BIG_MESSAGE.split(b"\r\n")[:-1]
    assert seen[9:] == [
        b"+OK message 1 deleted",
        (2, second.size + third.size),
        b"+OK mail.example.com POP3 server signing off (1 messages deleted)",
    ]
    assert await pop3.store.list(MAILBOX) == [second, third]
    wire = b"Subject: lf\r\n\r\nfirst\r\n..dot line\r\n...two dots\r\n..\r\nno final newline\r\n"
    retr_2 = len(b"+OK %d octets\r\n" % second.size) + len(wire) + len(b".\r\n")
    top_1 = len(b"+OK top of message follows\r\nSubject: one\r\nX: y\r\n\r\nbody 1\r\n.\r\n")
    dotted = BIG_MESSAGE.count(b"\n.")  # each such line goes out with one more "."
    retr_3 = len(b"+OK %d octets\r\n" % third.size) + len(BIG_MESSAGE) + dotted + 3
    # Every octet of the three responses, reported once, before QUIT was answered.
    assert pop3.retrieved == [retr_2 + top_1 + retr_3]
    assert pop3.authenticator.clients == [ClientInfo("127.0.0.1", "pop3")]


async def test_a_long_session_reports_retrievals_as_it_goes(pop3: Server) -> None:
    big = await pop3.store.deliver(MAILBOX, BIG_MESSAGE)
    rounds = REPORT_EVERY // big.size + 1  # enough to pass REPORT_EVERY once

    def session() -> tuple[list[int], list[int]]:
        pop = pop3.login()
        for _ in range(rounds):
            pop.retr(1)
        pop.noop()  # the last RETR's report, if any, came before this reply
        before_quit = list(pop3.retrieved)
        pop.retr(1)
        pop.quit()
        return before_quit, list(pop3.retrieved)

    before_quit, after = await _in_thread(session)
    assert len(before_quit) == 1 and before_quit[0] >= REPORT_EVERY
    assert len(after) == 2 and after[1] < REPORT_EVERY


async def test_a_dropped_session_still_reports_what_it_retrieved(pop3: Server) -> None:
    message = b"Subject: counted\r\n\r\nbody\r\n"
    await pop3.store.deliver(MAILBOX, message)

    def session() -> None:
        pop = pop3.login()
        pop.retr(1)
        pop.close()  # no QUIT

    await _in_thread(session)
    await _released(pop3.store)
    for _ in range(200):  # reported after the session let go of the mailbox
        if pop3.retrieved:
            break
        await asyncio.sleep(0.02)
    assert pop3.retrieved == [len(b"+OK %d octets\r\n%b.\r\n" % (len(message), message))]


async def test_dropped_connection_deletes_nothing(pop3: Server) -> None:
    stored = await pop3.store.deliver(MAILBOX, b"Subject: keep me\r\n\r\nbody\r\n")

    def session() -> bytes:
        pop = pop3.login()
        reply = pop.dele(1)
        pop.close()  # hang up without QUIT: RFC 1939 §6, no UPDATE state
        return reply

    assert await _in_thread(session) == b"+OK message 1 deleted"
    await _released(pop3.store)
    assert await pop3.store.list(MAILBOX) == [stored]


async def test_second_session_on_a_mailbox_gets_in_use(pop3: Server) -> None:
    def sessions() -> str:
        first = pop3.login()
        try:
            second = pop3.client()
            second.user(str(BOB))
            with pytest.raises(poplib.error_proto) as refused:
                second.pass_(PASSWORD)
            second.quit()
        finally:
            first.quit()
        return str(refused.value)

    assert await _in_thread(sessions) == "b'-ERR [IN-USE] mailbox is in use by another session'"


async def test_wrong_password_is_refused_with_auth_code(pop3: Server) -> None:
    def session() -> str:
        pop = pop3.client()
        pop.user(str(BOB))
        with pytest.raises(poplib.error_proto) as refused:
            pop.pass_("wrong")
        pop.quit()
        return str(refused.value)

    assert await _in_thread(session) == "b'-ERR [AUTH] invalid login or password'"


async def test_connections_over_the_limit_are_turned_away(tmp_path: Path) -> None:
    server, state = await _start(tmp_path, max_connections=1)
    async with server:
        first = await _in_thread(state.client)
        try:
            # Raw, since poplib leaks its socket when the greeting is an -ERR.
            reader, writer = await asyncio.open_connection("127.0.0.1", state.port)
            refusal, after = await reader.readline(), await reader.read()
            writer.close()
            await writer.wait_closed()
        finally:
            await _in_thread(first.quit)
    assert refusal == b"-ERR [SYS/TEMP] too many connections, try again later\r\n"
    assert after == b""  # and the server hung up


async def test_overlong_line_is_refused_and_the_session_goes_on(pop3: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pop3.port)
    try:
        await reader.readline()
        writer.write(b"NOOP " + b"x" * 5000 + b"\r\nNOOP " + b"y" * 300 + b"\r\nNOOP\r\n")
        replies = [await reader.readline() for _ in range(3)]
    finally:
        writer.close()
        await writer.wait_closed()
    assert replies == [
        b"-ERR line too long\r\n",
        b"-ERR command line longer than 255 octets\r\n",
        b"+OK\r\n",
    ]


async def test_idle_client_is_dropped_silently_and_nothing_is_deleted(tmp_path: Path) -> None:
    server, state = await _start(tmp_path, idle_timeout=0.3)
    async with server:
        stored = await state.store.deliver(MAILBOX, b"Subject: keep\r\n\r\nbody\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", state.port)
        await reader.readline()
        writer.write(f"USER {BOB}\r\nPASS {PASSWORD}\r\nDELE 1\r\n".encode())
        replies = [await reader.readline() for _ in range(3)]
        # RFC 1939 §3: the autologout timer closes without a reply and without UPDATE.
        after = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        await writer.wait_closed()
        await _released(state.store)
        assert await state.store.list(MAILBOX) == [stored]
    await state.store.close()
    assert replies[2] == b"+OK message 1 deleted\r\n"
    assert after == b""


async def test_message_vanishing_before_retr_gets_sys_temp_and_the_session_goes_on(
    pop3: Server,
) -> None:
    gone = await pop3.store.deliver(MAILBOX, b"Subject: gone\r\n\r\n")

    def session() -> tuple[str, bytes]:
        pop = pop3.login()
        # Someone ignoring the mailbox lock removes the file behind the session's back.
        (pop3.store.maildir_path(MAILBOX) / "new" / gone.uid).unlink()
        with pytest.raises(poplib.error_proto) as failed:
            pop.retr(1)
        return str(failed.value), pop.quit()

    refusal, bye = await _in_thread(session)
    assert refusal.startswith("b'-ERR [SYS/TEMP] internal error, incident ")
    assert bye.startswith(b"+OK")
