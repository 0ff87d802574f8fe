"""POP3 command parsing: table tests for each command, hypothesis for robustness and round trips."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.pop3.commands import (
    MAX_COMMAND_LINE,
    MAX_NUMBER,
    Auth,
    BadCommand,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    PlainCredentials,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    parse_command,
    parse_sasl_plain,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"USER bob@example.com\r\n", User("bob@example.com")),
        (b"user bob@example.com\r\n", User("bob@example.com")),
        (b"PASS secret\r\n", Pass("secret")),
        (b"PASS  two  spaces \r\n", Pass(" two  spaces ")),
        (b"PASS p\xc3\xa4ss\r\n", Pass("päss")),
        (b"STAT\r\n", Stat()),
        (b"stat\n", Stat()),
        (b"LIST\r\n", List(None)),
        (b"LIST 3\r\n", List(3)),
        (b"LiSt  3 \r\n", List(3)),
        (b"RETR 1\r\n", Retr(1)),
        (b"RETR 007\r\n", Retr(7)),
        (b"DELE 2\r\n", Dele(2)),
        (b"NOOP\r\n", Noop()),
        (b"RSET\r\n", Rset()),
        (b"QUIT", Quit()),
        (b"TOP 1 0\r\n", Top(1, 0)),
        (b"top 4 10\r\n", Top(4, 10)),
        (b"UIDL\r\n", Uidl(None)),
        (b"UIDL 5\r\n", Uidl(5)),
        (b"CAPA\r\n", Capa()),
        (b"STLS\r\n", Stls()),
        (b"AUTH\r\n", Auth(None, None)),
        (b"auth plain\r\n", Auth("PLAIN", None)),
        (b"AUTH PLAIN AGJvYgBwdw==\r\n", Auth("PLAIN", "AGJvYgBwdw==")),
        (b"AUTH PLAIN =\r\n", Auth("PLAIN", "=")),
        (f"LIST {MAX_NUMBER}\r\n".encode(), List(MAX_NUMBER)),
    ],
)
def test_valid_command_lines_parse(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\r\n", "unknown command"),
        (b"APOP bob 1234\r\n", "unknown command"),
        (b"HELO x\r\n", "unknown command"),
        (b"LISTS\r\n", "unknown command"),
        (b" STAT\r\n", "unknown command"),
        (b"ST\r\n", "unknown command"),
        (b"STAT 1\r\n", "this command takes no arguments"),
        (b"QUIT now\r\n", "this command takes no arguments"),
        (b"LIST 0\r\n", "invalid message number"),
        (b"LIST -1\r\n", "invalid message number"),
        (b"LIST +1\r\n", "invalid message number"),
        (b"LIST 1 2\r\n", "invalid message number"),
        (b"RETR\r\n", "invalid message number"),
        (b"RETR x\r\n", "invalid message number"),
        (b"RETR 1.0\r\n", "invalid message number"),
        (b"RETR 1_0\r\n", "invalid message number"),
        ("RETR \uff11\r\n".encode(), "invalid message number"),
        (f"RETR {MAX_NUMBER + 1}\r\n".encode(), "invalid message number"),
        (b"RETR 99999999999\r\n", "invalid message number"),
        (b"DELE 0\r\n", "invalid message number"),
        (b"UIDL 0\r\n", "invalid message number"),
        (b"TOP 1\r\n", "TOP needs a message number and a line count"),
        (b"TOP 0 1\r\n", "invalid message number or line count"),
        (b"TOP 1 -1\r\n", "invalid message number or line count"),
        (b"USER\r\n", "USER needs one name"),
        (b"USER a b\r\n", "USER needs one name"),
        (b"PASS\r\n", "PASS needs a password"),
        (b"PASS \r\n", "PASS needs a password"),
        (b"AUTH PLAIN a b\r\n", "AUTH takes a mechanism and an optional initial response"),
        (b"USER b\xffb\r\n", "arguments are not valid UTF-8"),
        (b"USER a\tb\r\n", "control characters in arguments"),
        (b"PASS a\rb\r\n", "control characters in arguments"),
        (b"PASS a\x00b\r\n", "control characters in arguments"),
    ],
)
def test_invalid_command_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    assert parse_command(line) == BadCommand(reason)


def test_command_line_of_255_octets_with_crlf_is_accepted() -> None:
    password = "p" * (MAX_COMMAND_LINE - len("PASS ") - 2)
    line = f"PASS {password}\r\n".encode()
    assert len(line) == MAX_COMMAND_LINE
    assert parse_command(line) == Pass(password)


def test_command_line_longer_than_255_octets_is_refused() -> None:
    line = b"PASS " + b"p" * (MAX_COMMAND_LINE - len("PASS ") - 1) + b"\r\n"
    assert len(line) == MAX_COMMAND_LINE + 1
    assert parse_command(line) == BadCommand("command line longer than 255 octets")


_KEYWORDS = [b"USER", b"pass", b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET"]
_KEYWORDS += [b"QUIT", b"TOP", b"UIDL", b"CAPA", b"STLS", b"AUTH", b"APOP"]


@given(
    st.binary(max_size=300)
    | st.builds(
        lambda k, rest: k + b" " + rest, st.sampled_from(_KEYWORDS), st.binary(max_size=300)
    )
)
def test_parse_command_never_raises_on_arbitrary_bytes(line: bytes) -> None:
    assert isinstance(parse_command(line), Command | BadCommand)


_numbers = st.integers(min_value=1, max_value=MAX_NUMBER)
_words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)
_passwords = st.text(
    st.characters(min_codepoint=0x20, blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60
)
_commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(User, _words),
    st.builds(Pass, _passwords),
    st.just(Stat()),
    st.builds(List, st.none() | _numbers),
    st.builds(Retr, _numbers),
    st.builds(Dele, _numbers),
    st.just(Noop()),
    st.just(Rset()),
    st.just(Quit()),
    st.builds(Top, _numbers, st.integers(min_value=0, max_value=MAX_NUMBER)),
    st.builds(Uidl, st.none() | _numbers),
    st.just(Capa()),
    st.just(Stls()),
    st.builds(Auth, st.none(), st.none()),
    st.builds(Auth, st.sampled_from(["PLAIN", "LOGIN", "CRAM-MD5"]), st.none() | _words),
)


def _wire(command: Command) -> tuple[str, list[str]]:
    """How a client would write the command: keyword and arguments."""
    match command:
        case User(name):
            return "USER", [name]
        case Pass(password):
            return "PASS", [password]
        case List(msg) | Uidl(msg):
            return type(command).__name__.upper(), [] if msg is None else [str(msg)]
        case Retr(msg) | Dele(msg):
            return type(command).__name__.upper(), [str(msg)]
        case Top(msg, lines):
            return "TOP", [str(msg), str(lines)]
        case Auth(mechanism, initial):
            return "AUTH", [arg for arg in (mechanism, initial) if arg is not None]
        case _:
            return type(command).__name__.upper(), []


@given(
    _commands,
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.sampled_from([b"\r\n", b"\n", b""]),
)
def test_valid_commands_round_trip_through_the_wire_form(
    command: Command, lower: list[bool], ending: bytes
) -> None:
    keyword, args = _wire(command)
    cased = "".join(c.lower() if low else c for c, low in zip(keyword, lower, strict=False))
    line = " ".join([cased, *args]).encode("utf-8") + ending
    if len(line.rstrip(b"\r\n")) + 2 > MAX_COMMAND_LINE:
        assert isinstance(parse_command(line), BadCommand)
    else:
        assert parse_command(line) == command


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_b64(b"\0bob@example.com\0secret"), PlainCredentials("bob@example.com", "secret")),
        (_b64(b"bob@x.test\0bob@x.test\0pw"), PlainCredentials("bob@x.test", "pw")),
        (
            _b64(b"\0bob@x.test\0p\xc3\xa4ss word") + b"\r\n",
            PlainCredentials("bob@x.test", "päss word"),
        ),
        (b"", None),
        (b"=", None),
        (b"!!!!", None),
        (b"AGJvYgBwdw", None),  # missing padding: strict base64 refuses it
        (_b64(b"bob\0pw"), None),
        (_b64(b"\0bob\0pw\0extra"), None),
        (_b64(b"alice\0bob\0pw"), None),
        (_b64(b"\0\0pw"), None),
        (_b64(b"\0bob\0"), None),
        (_b64(b"\0bob\0\xff"), None),
    ],
)
def test_sasl_plain_responses(response: bytes, expected: PlainCredentials | None) -> None:
    assert parse_sasl_plain(response) == expected


@given(st.binary(max_size=200))
def test_parse_sasl_plain_never_raises(response: bytes) -> None:
    for candidate in (response, _b64(response)):
        result = parse_sasl_plain(candidate)
        assert result is None or (result.login and result.password)


_no_nul = st.text(st.characters(codec="utf-8", blacklist_characters="\0"), min_size=1)


@given(_no_nul, _no_nul, st.booleans())
def test_sasl_plain_round_trips(login: str, password: str, with_authzid: bool) -> None:
    authzid = login if with_authzid else ""
    response = _b64(f"{authzid}\0{login}\0{password}".encode())
    assert parse_sasl_plain(response) == PlainCredentials(login, password)
