"""The POP3 state machine without sockets: each RFC 1939/2449/2595/5034 rule as a dialogue."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.interfaces import StoredMessage
from mailhost.model.logins import Authenticated, BadCredentials
from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord, MailboxRef
from mailhost.pop3.commands import Dele, List, Rset, Stat
from mailhost.pop3.machine import (
    MAX_BAD_COMMANDS,
    Action,
    Authenticate,
    Close,
    Commit,
    OpenMailbox,
    Phase,
    Pop3Machine,
    Send,
    StartTls,
    Stream,
)

BOB = EmailAddress.parse("bob@example.com")
MAILBOX = MailboxRef(7, BOB, "b0" * 16)
LOGIN = LoginRecord(1, 1, 1, BOB, "$argon2id$unused", True, MAILBOX)
MESSAGES = [StoredMessage("uid-a", 100), StoredMessage("uid-b", 200), StoredMessage("uid-c", 300)]


def _machine(*, tls: bool = True, available: bool = True, plaintext: bool = False) -> Pop3Machine:
    return Pop3Machine(
        hostname="mail.example.com",
        tls_active=tls,
        tls_available=available,
        allow_plaintext_auth=plaintext,
    )


def _say(machine: Pop3Machine, line: str) -> bytes:
    """Send one line and return the single reply it gets."""
    actions = machine.receive(line.encode() + b"\r\n")
    assert len(actions) == 1 and isinstance(actions[0], Send), actions
    return actions[0].data


def _logged_in(messages: list[StoredMessage] = MESSAGES) -> Pop3Machine:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    assert machine.receive(b"PASS secret\r\n") == [Authenticate("bob@example.com", "secret")]
    assert machine.auth_result(Authenticated(LOGIN)) == [OpenMailbox(LOGIN, MAILBOX)]
    machine.mailbox_opened(messages)
    return machine


def _plain(authzid: str, authcid: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def test_greeting_names_the_host() -> None:
    assert _machine().greeting() == b"+OK mail.example.com POP3 ready\r\n"


def test_capa_before_tls_offers_stls_but_no_login() -> None:
    assert _say(_machine(tls=False), "CAPA") == (
        b"+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"PIPELINING\r\nSTLS\r\n.\r\n"
    )


def test_capa_after_tls_offers_user_and_sasl_plain_but_not_stls() -> None:
    machine = _machine(tls=False)
    assert machine.receive(b"STLS\r\n") == [Send(b"+OK begin TLS negotiation\r\n"), StartTls()]
    machine.tls_started()
    capabilities = _say(machine, "CAPA").split(b"\r\n")
    assert b"USER" in capabilities and b"SASL PLAIN" in capabilities
    assert b"STLS" not in capabilities


def test_capa_with_plaintext_auth_allowed_offers_login_and_stls() -> None:
    capabilities = _say(_machine(tls=False, plaintext=True), "CAPA").split(b"\r\n")
    assert {b"USER", b"SASL PLAIN", b"STLS"} <= set(capabilities)


@pytest.mark.parametrize("line", ["USER bob@example.com", "PASS secret", "AUTH PLAIN", "AUTH"])
def test_login_before_tls_is_refused_with_auth_code(line: str) -> None:
    assert _say(_machine(tls=False), line) == (
        b"-ERR [AUTH] must issue STLS first: login is disabled without TLS\r\n"
    )


def test_plaintext_login_works_when_the_operator_allows_it() -> None:
    machine = _machine(tls=False, plaintext=True)
    assert _say(machine, "USER bob@example.com") == b"+OK send your password\r\n"
    assert machine.receive(b"PASS secret\r\n") == [Authenticate("bob@example.com", "secret")]


def test_stls_twice_is_refused() -> None:
    assert _say(_machine(tls=True), "STLS") == b"-ERR TLS is already active\r\n"


def test_stls_without_tls_configured_is_refused() -> None:
    assert _say(_machine(tls=False, available=False), "STLS") == (
        b"-ERR STLS is not available on this port\r\n"
    )


def test_stls_forgets_a_user_given_before_it() -> None:
    machine = _machine(tls=False, plaintext=True)
    _say(machine, "USER mallory@example.com")
    machine.receive(b"STLS\r\n")
    machine.tls_started()
    assert _say(machine, "PASS secret") == b"-ERR send USER first\r\n"


def test_user_pass_login_opens_the_mailbox() -> None:
    machine = _machine()
    assert _say(machine, "USER bob@example.com") == b"+OK send your password\r\n"
    assert machine.receive(b"PASS pass with spaces\r\n") == [
        Authenticate("bob@example.com", "pass with spaces")
    ]
    assert machine.auth_result(Authenticated(LOGIN)) == [OpenMailbox(LOGIN, MAILBOX)]
    phases = [machine.phase]  # not logged in until the driver holds the mailbox
    assert machine.mailbox_opened(MESSAGES) == [
        Send(b"+OK bob@example.com has 3 messages (600 octets)\r\n")
    ]
    phases.append(machine.phase)
    assert phases == [Phase.AUTHORIZATION, Phase.TRANSACTION]
    assert machine.login == LOGIN and machine.mailbox == MAILBOX


def test_pass_without_user_is_refused() -> None:
    assert _say(_machine(), "PASS secret") == b"-ERR send USER first\r\n"


def test_bad_credentials_get_auth_code_and_need_a_new_user() -> None:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS wrong\r\n")
    assert machine.auth_result(BadCredentials()) == [
        Send(b"-ERR [AUTH] invalid login or password\r\n")
    ]
    assert machine.phase is Phase.AUTHORIZATION
    assert _say(machine, "PASS again") == b"-ERR send USER first\r\n"


def test_many_failed_logins_are_each_auth_and_the_right_one_still_logs_in() -> None:
    # No lockout answer exists: failures only slow the client down before the
    # authenticator answers (services/throttle.py), so the session sees [AUTH] each time.
    machine = _machine()
    for _ in range(6):
        _say(machine, "USER bob@example.com")
        machine.receive(b"PASS wrong\r\n")
        assert machine.auth_result(BadCredentials()) == [
            Send(b"-ERR [AUTH] invalid login or password\r\n")
        ]
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS secret\r\n")
    assert machine.auth_result(Authenticated(LOGIN)) == [OpenMailbox(LOGIN, MAILBOX)]


def test_user_without_mailbox_is_refused_after_authenticating() -> None:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS secret\r\n")
    no_mailbox = LoginRecord(1, 1, 1, BOB, "$argon2id$unused", True, None)
    assert machine.auth_result(Authenticated(no_mailbox)) == [
        Send(b"-ERR [AUTH] bob@example.com has no POP3 mailbox\r\n")
    ]
    assert machine.phase is Phase.AUTHORIZATION


def test_mailbox_in_use_answers_in_use_and_allows_a_retry() -> None:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS secret\r\n")
    machine.auth_result(Authenticated(LOGIN))
    assert machine.mailbox_in_use() == [
        Send(b"-ERR [IN-USE] mailbox is in use by another session\r\n")
    ]
    assert machine.phase is Phase.AUTHORIZATION
    assert _say(machine, "USER bob@example.com") == b"+OK send your password\r\n"


def test_auth_plain_with_initial_response() -> None:
    machine = _machine()
    line = f"AUTH PLAIN {_plain('', 'bob@example.com', 'secret')}\r\n"
    assert machine.receive(line.encode()) == [Authenticate("bob@example.com", "secret")]


def test_auth_plain_with_continuation_and_matching_authzid() -> None:
    machine = _machine()
    assert machine.receive(b"auth plain\r\n") == [Send(b"+ \r\n")]
    assert machine.awaiting_sasl_response
    response = _plain("bob@example.com", "bob@example.com", "pässword")
    assert machine.receive(response.encode() + b"\r\n") == [
        Authenticate("bob@example.com", "pässword")
    ]


def test_auth_continuation_is_not_parsed_as_a_command() -> None:
    machine = _machine()
    machine.receive(b"AUTH PLAIN\r\n")
    assert _say(machine, "QUIT") == b"-ERR malformed SASL PLAIN response\r\n"
    assert machine.phase is Phase.AUTHORIZATION


def test_auth_star_cancels() -> None:
    machine = _machine()
    machine.receive(b"AUTH PLAIN\r\n")
    assert _say(machine, "*") == b"-ERR authentication cancelled\r\n"
    assert not machine.awaiting_sasl_response
    assert _say(machine, "NOOP") == b"+OK\r\n"


@pytest.mark.parametrize(
    "response",
    [
        "=",
        "not-base64!",
        base64.b64encode(b"bob@example.com\0secret").decode(),
        _plain("alice@example.com", "bob@example.com", "secret"),
        _plain("", "", "secret"),
        _plain("", "bob@example.com", ""),
        base64.b64encode(b"\0bob\0\xff").decode(),
    ],
)
def test_malformed_auth_plain_is_refused(response: str) -> None:
    assert _say(_machine(), f"AUTH PLAIN {response}") == b"-ERR malformed SASL PLAIN response\r\n"


def test_bare_auth_lists_mechanisms() -> None:
    assert _say(_machine(), "AUTH") == b"+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n"


def test_unsupported_mechanism_is_refused() -> None:
    assert _say(_machine(), "AUTH CRAM-MD5") == b"-ERR unsupported SASL mechanism, use PLAIN\r\n"


def test_long_line_during_sasl_ends_the_exchange() -> None:
    machine = _machine()
    machine.receive(b"AUTH PLAIN\r\n")
    assert machine.line_too_long() == [Send(b"-ERR line too long\r\n")]
    assert not machine.awaiting_sasl_response


@pytest.mark.parametrize("line", ["STAT", "LIST", "RETR 1", "DELE 1", "TOP 1 1", "UIDL", "RSET"])
def test_transaction_commands_are_refused_before_login(line: str) -> None:
    assert _say(_machine(), line) == b"-ERR command not valid in this state\r\n"


@pytest.mark.parametrize("line", ["USER bob@example.com", "PASS x", "AUTH PLAIN", "STLS"])
def test_authorization_commands_are_refused_after_login(line: str) -> None:
    assert _say(_logged_in(), line) == b"-ERR command not valid in this state\r\n"


def test_quit_before_login_closes_without_commit() -> None:
    assert _machine().receive(b"QUIT\r\n") == [
        Send(b"+OK mail.example.com POP3 server signing off\r\n"),
        Close(),
    ]


def test_stat_list_and_uidl() -> None:
    machine = _logged_in()
    assert _say(machine, "STAT") == b"+OK 3 600\r\n"
    assert _say(machine, "LIST") == (
        b"+OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n"
    )
    assert _say(machine, "LIST 2") == b"+OK 2 200\r\n"
    assert _say(machine, "UIDL") == (
        b"+OK unique-id listing follows\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n"
    )
    assert _say(machine, "UIDL 3") == b"+OK 3 uid-c\r\n"


@pytest.mark.parametrize("line", ["LIST 4", "UIDL 4", "RETR 4", "TOP 4 0", "DELE 4"])
def test_message_numbers_beyond_the_maildrop_are_refused(line: str) -> None:
    assert _say(_logged_in(), line) == b"-ERR no such message\r\n"


def test_empty_maildrop() -> None:
    machine = _logged_in([])
    assert _say(machine, "STAT") == b"+OK 0 0\r\n"
    assert _say(machine, "LIST") == b"+OK 0 messages (0 octets)\r\n.\r\n"
    assert _say(machine, "RETR 1") == b"-ERR no such message\r\n"


def test_retr_and_top_stream_the_message() -> None:
    machine = _logged_in()
    assert machine.receive(b"RETR 2\r\n") == [Stream("uid-b", None, b"+OK 200 octets\r\n")]
    assert machine.receive(b"TOP 3 5\r\n") == [
        Stream("uid-c", 5, b"+OK top of message follows\r\n")
    ]


def test_deleted_messages_vanish_from_listings_until_rset() -> None:
    machine = _logged_in()
    assert _say(machine, "DELE 2") == b"+OK message 2 deleted\r\n"
    assert _say(machine, "DELE 2") == b"-ERR message 2 already deleted\r\n"
    assert _say(machine, "STAT") == b"+OK 2 400\r\n"
    assert _say(machine, "LIST") == b"+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n"
    assert _say(machine, "UIDL") == b"+OK unique-id listing follows\r\n1 uid-a\r\n3 uid-c\r\n.\r\n"
    for line in ("LIST 2", "UIDL 2", "RETR 2", "TOP 2 1"):
        assert _say(machine, line) == b"-ERR no such message\r\n"
    assert _say(machine, "RSET") == b"+OK maildrop has 3 messages (600 octets)\r\n"
    assert _say(machine, "LIST 2") == b"+OK 2 200\r\n"


def test_quit_in_transaction_commits_deletions_then_says_goodbye() -> None:
    machine = _logged_in()
    _say(machine, "DELE 3")
    _say(machine, "DELE 1")
    assert machine.receive(b"QUIT\r\n") == [Commit(("uid-a", "uid-c"))]
    assert machine.phase is Phase.UPDATE
    assert machine.committed() == [
        Send(b"+OK mail.example.com POP3 server signing off (2 messages deleted)\r\n"),
        Close(),
    ]


def test_quit_without_deletions_commits_nothing() -> None:
    assert _logged_in().receive(b"QUIT\r\n") == [
        Send(b"+OK mail.example.com POP3 server signing off (0 messages deleted)\r\n"),
        Close(),
    ]


def test_failed_commit_reports_sys_temp_and_closes() -> None:
    machine = _logged_in()
    _say(machine, "DELE 1")
    machine.receive(b"QUIT\r\n")
    assert machine.failed("c0ffee") == [
        Send(b"-ERR [SYS/TEMP] some deleted messages not removed, incident c0ffee\r\n"),
        Close(),
    ]


def test_failed_authentication_call_reports_sys_temp_and_keeps_the_session() -> None:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS secret\r\n")
    assert machine.failed("1d") == [Send(b"-ERR [SYS/TEMP] internal error, incident 1d\r\n")]
    assert _say(machine, "USER bob@example.com") == b"+OK send your password\r\n"


def test_failed_handshake_closes() -> None:
    machine = _machine(tls=False)
    machine.receive(b"STLS\r\n")
    assert machine.failed("7") == [Close()]


def test_noop_and_capa_work_in_both_states() -> None:
    for machine in (_machine(), _logged_in()):
        assert _say(machine, "NOOP") == b"+OK\r\n"
        assert _say(machine, "CAPA").startswith(b"+OK capability list follows\r\n")


def test_unknown_commands_get_a_reason() -> None:
    assert _say(_machine(), "APOP bob x") == b"-ERR unknown command\r\n"


def test_a_client_that_keeps_sending_garbage_is_disconnected() -> None:
    machine = _machine()
    for _ in range(MAX_BAD_COMMANDS - 1):
        assert _say(machine, "XYZZY") == b"-ERR unknown command\r\n"
    assert machine.receive(b"XYZZY\r\n") == [
        Send(b"-ERR too many bad commands, closing connection\r\n"),
        Close(),
    ]


def test_good_commands_reset_the_garbage_count() -> None:
    machine = _machine()
    for _ in range(3):
        for _ in range(MAX_BAD_COMMANDS - 1):
            _say(machine, "XYZZY")
        assert _say(machine, "NOOP") == b"+OK\r\n"


def test_commands_while_waiting_for_the_driver_are_a_driver_bug() -> None:
    machine = _machine()
    _say(machine, "USER bob@example.com")
    machine.receive(b"PASS secret\r\n")
    with pytest.raises(RuntimeError, match="auth result"):
        machine.receive(b"NOOP\r\n")


_operations = st.lists(
    st.one_of(
        st.builds(Dele, st.integers(min_value=1, max_value=7)),
        st.just(Rset()),
        st.just(Stat()),
        st.builds(List, st.none() | st.integers(min_value=1, max_value=7)),
    ),
    max_size=30,
)


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=6), _operations)
def test_any_session_commits_exactly_the_messages_marked_since_the_last_rset(
    sizes: list[int], operations: list[Dele | Rset | Stat | List]
) -> None:
    messages = [StoredMessage(f"uid-{n}", size) for n, size in enumerate(sizes, start=1)]
    machine = _logged_in(messages)
    deleted: set[int] = set()
    for operation in operations:
        reply = _single(machine.handle(operation))
        if isinstance(operation, Dele):
            fresh = operation.msg <= len(messages) and operation.msg not in deleted
            assert reply.startswith(b"+OK") == fresh
            deleted |= {operation.msg} if fresh else set()
        elif isinstance(operation, Rset):
            deleted.clear()
        elif isinstance(operation, Stat):
            live = [m for n, m in enumerate(messages, start=1) if n not in deleted]
            assert reply == f"+OK {len(live)} {sum(m.size for m in live)}\r\n".encode()
        elif operation.msg is not None:
            exists = operation.msg <= len(messages) and operation.msg not in deleted
            assert reply.startswith(b"+OK") == exists
    expected = tuple(f"uid-{n}" for n in sorted(deleted))
    actions = machine.receive(b"QUIT\r\n")
    assert actions == ([Commit(expected)] if expected else [Send(_bye(0)), Close()])


def _single(actions: list[Action]) -> bytes:
    assert len(actions) == 1 and isinstance(actions[0], Send)
    return actions[0].data


def _bye(count: int) -> bytes:
    return f"+OK mail.example.com POP3 server signing off ({count} messages deleted)\r\n".encode()
