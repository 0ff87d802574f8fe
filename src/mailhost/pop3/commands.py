"""POP3 command lines parsed into typed commands; nothing here raises on client input."""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

# RFC 2449 §4: a command line is at most 255 octets, including the terminating CRLF.
MAX_COMMAND_LINE = 255
# Message numbers and TOP line counts; a larger number names nothing we could hold.
MAX_NUMBER = 2**31 - 1
_NUMBER = re.compile(rb"[0-9]{1,10}")
# RFC 1939 §3: keywords are three or four characters, case-insensitive.
_KEYWORD = re.compile(rb"[A-Za-z]{3,4}")


@dataclass(frozen=True, slots=True)
class User:
    """RFC 1939 §7 USER name; the name is the full address user@domain."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """RFC 1939 §7 PASS string; spaces belong to the password."""

    password: str


@dataclass(frozen=True, slots=True)
class Stat:
    pass


@dataclass(frozen=True, slots=True)
class List:
    """RFC 1939 §5 LIST [msg]."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Retr:
    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Top:
    """RFC 1939 §7 TOP msg n: headers, blank line, then n body lines."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """RFC 1939 §7 UIDL [msg]."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Capa:
    """RFC 2449 §5 CAPA."""


@dataclass(frozen=True, slots=True)
class Stls:
    """RFC 2595 §4 STLS."""


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 5034 §4 AUTH [mechanism [initial-response]]; the mechanism is upper-cased.

    `initial_response` is the base64 text as sent ("=" stands for an empty response).
    """

    mechanism: str | None
    initial_response: str | None


@dataclass(frozen=True, slots=True)
class BadCommand:
    """A line that is not a command we accept; `reason` is safe to echo to the client."""

    reason: str


Command = (
    User | Pass | Stat | List | Retr | Dele | Noop | Rset | Quit | Top | Uidl | Capa | Stls | Auth
)
_Parser = Callable[[list[str]], Command | BadCommand]


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    """A decoded SASL PLAIN response (RFC 4616 §2)."""

    login: str
    password: str


def strip_line_ending(line: bytes) -> bytes:
    """The line without its CRLF (or a bare LF, which RFC 1939 clients sometimes send)."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def parse_command(line: bytes) -> Command | BadCommand:
    """Parse one command line, with or without its line ending."""
    body = strip_line_ending(line)
    if len(body) + 2 > MAX_COMMAND_LINE:
        return BadCommand(f"command line longer than {MAX_COMMAND_LINE} octets")
    keyword, _, rest = body.partition(b" ")
    if not _KEYWORD.fullmatch(keyword):
        return BadCommand("unknown command")
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        return BadCommand("arguments are not valid UTF-8")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return BadCommand("control characters in arguments")
    name = keyword.decode("ascii").upper()
    if name == "PASS":
        return _parse_pass(body, text)
    parser = _PARSERS.get(name)
    if parser is None:
        return BadCommand("unknown command")
    # RFC 1939 §3: arguments are separated by single spaces; runs of spaces are tolerated.
    return parser([arg for arg in text.split(" ") if arg])


def parse_sasl_plain(response: bytes) -> PlainCredentials | None:
    """RFC 4616 §2: base64 of [authzid] NUL authcid NUL passwd; None if malformed.

    We only log people in as themselves, so an authzid must be empty or the authcid.
    """
    try:
        decoded = binascii.a2b_base64(strip_line_ending(response), strict_mode=True)
        authzid, authcid, password = decoded.decode("utf-8").split("\x00")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and the wrong number of NULs
        return None
    if not authcid or not password or authzid not in ("", authcid):
        return None
    return PlainCredentials(authcid, password)


def _parse_pass(body: bytes, text: str) -> Pass | BadCommand:
    # RFC 1939 §7: PASS has exactly one argument, so spaces are part of the password.
    if b" " not in body or not text:
        return BadCommand("PASS needs a password")
    return Pass(text)


def _number(arg: str, *, minimum: int) -> int | None:
    raw = arg.encode("utf-8")
    if not _NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= MAX_NUMBER else None


def _no_args(command: Command) -> _Parser:
    def parse(args: list[str]) -> Command | BadCommand:
        return command if not args else BadCommand("this command takes no arguments")

    return parse


def _parse_user(args: list[str]) -> Command | BadCommand:
    return User(args[0]) if len(args) == 1 else BadCommand("USER needs one name")


def _optional_msg(build: type[List] | type[Uidl]) -> _Parser:
    def parse(args: list[str]) -> Command | BadCommand:
        if not args:
            return build(None)
        msg = _number(args[0], minimum=1) if len(args) == 1 else None
        return BadCommand("invalid message number") if msg is None else build(msg)

    return parse


def _one_msg(build: type[Retr] | type[Dele]) -> _Parser:
    def parse(args: list[str]) -> Command | BadCommand:
        msg = _number(args[0], minimum=1) if len(args) == 1 else None
        return BadCommand("invalid message number") if msg is None else build(msg)

    return parse


def _parse_top(args: list[str]) -> Command | BadCommand:
    if len(args) != 2:
        return BadCommand("TOP needs a message number and a line count")
    msg = _number(args[0], minimum=1)
    lines = _number(args[1], minimum=0)
    if msg is None or lines is None:
        return BadCommand("invalid message number or line count")
    return Top(msg, lines)


def _parse_auth(args: list[str]) -> Command | BadCommand:
    if len(args) > 2:
        return BadCommand("AUTH takes a mechanism and an optional initial response")
    mechanism = args[0].upper() if args else None
    return Auth(mechanism, args[1] if len(args) == 2 else None)


_PARSERS: dict[str, _Parser] = {
    "USER": _parse_user,
    "STAT": _no_args(Stat()),
    "LIST": _optional_msg(List),
    "RETR": _one_msg(Retr),
    "DELE": _one_msg(Dele),
    "NOOP": _no_args(Noop()),
    "RSET": _no_args(Rset()),
    "QUIT": _no_args(Quit()),
    "TOP": _parse_top,
    "UIDL": _optional_msg(Uidl),
    "CAPA": _no_args(Capa()),
    "STLS": _no_args(Stls()),
    "AUTH": _parse_auth,
}
