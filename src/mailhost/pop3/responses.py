"""POP3 replies: the table of +OK/-ERR texts with RESP-CODES, and dot-stuffed multi-line output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# RFC 2449 §4: a response line is at most 512 octets, including the terminating CRLF.
MAX_RESPONSE_LINE = 512
CRLF = b"\r\n"
TERMINATOR = b".\r\n"  # RFC 1939 §3: a multi-line response ends with "." CRLF
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class RespCode(StrEnum):
    """Extended response codes: RFC 2449 §8 and RFC 3206."""

    AUTH = "AUTH"  # RFC 3206 §4: the credentials are at fault
    IN_USE = "IN-USE"  # RFC 2449 §8.1.2: the maildrop is locked by another session
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 §5: a temporary failure; retrying later may work
    SYS_PERM = "SYS/PERM"  # RFC 3206 §5: a permanent failure; retrying will not help


@dataclass(frozen=True, slots=True)
class Row:
    """One reply: +OK or -ERR, an optional RESP-CODE and a text with {named} fields."""

    positive: bool
    template: str
    code: RespCode | None = None

    def render(self, **fields: object) -> bytes:
        return (ok if self.positive else err)(self.template.format(**fields), self.code)


def ok(text: str = "", code: RespCode | None = None) -> bytes:
    return _status_line("+OK", text, code)


def err(text: str, code: RespCode | None = None) -> bytes:
    return _status_line("-ERR", text, code)


def _status_line(status: str, text: str, code: RespCode | None) -> bytes:
    # Texts may carry names from the directory; never let them break the line framing.
    parts = [status, f"[{code}]" if code else "", _UNSAFE.sub("?", text)]
    line = " ".join(part for part in parts if part).encode("utf-8")
    return line[: MAX_RESPONSE_LINE - 2] + CRLF


# RFC 1939 §4 greeting; §7 USER/PASS; §5 the exact STAT and scan-listing formats.
GREETING = Row(True, "{hostname} POP3 ready")
USER_ACCEPTED = Row(True, "send your password")
LOGGED_IN = Row(True, "{login} has {count} messages ({size} octets)")
STAT = Row(True, "{count} {size}")  # RFC 1939 §5: "+OK nn mm", nothing else
LIST_FOLLOWS = Row(True, "{count} messages ({size} octets)")
LIST_ONE = Row(True, "{msg} {size}")  # RFC 1939 §5 scan listing
RETR_FOLLOWS = Row(True, "{size} octets")
TOP_FOLLOWS = Row(True, "top of message follows")
DELETED = Row(True, "message {msg} deleted")
NOOP = Row(True, "")
RESET = Row(True, "maildrop has {count} messages ({size} octets)")
UIDL_FOLLOWS = Row(True, "unique-id listing follows")
UIDL_ONE = Row(True, "{msg} {uid}")  # RFC 1939 §7 unique-id listing
BYE = Row(True, "{hostname} POP3 server signing off")
BYE_UPDATED = Row(True, "{hostname} POP3 server signing off ({count} messages deleted)")
CAPA_FOLLOWS = Row(True, "capability list follows")  # RFC 2449 §5
STLS_BEGIN = Row(True, "begin TLS negotiation")  # RFC 2595 §4
SASL_MECHANISMS = Row(True, "SASL mechanisms follow")

BAD_COMMAND = Row(False, "{reason}")
WRONG_STATE = Row(False, "command not valid in this state")  # RFC 1939 §3
PASS_WITHOUT_USER = Row(False, "send USER first")  # RFC 1939 §7
# RFC 2595 §2.2 and §4: credentials travel only inside TLS; say what to do instead.
TLS_REQUIRED = Row(False, "must issue STLS first: login is disabled without TLS", RespCode.AUTH)
BAD_LOGIN = Row(False, "invalid login or password", RespCode.AUTH)  # RFC 3206 §4
NO_MAILBOX = Row(False, "{login} has no POP3 mailbox", RespCode.AUTH)
IN_USE = Row(False, "mailbox is in use by another session", RespCode.IN_USE)  # RFC 2449 §8.1.2
NO_SUCH_MESSAGE = Row(False, "no such message")  # RFC 1939 §5
ALREADY_DELETED = Row(False, "message {msg} already deleted")  # RFC 1939 §5 DELE
TLS_ACTIVE = Row(False, "TLS is already active")  # RFC 2595 §4
TLS_UNAVAILABLE = Row(False, "STLS is not available on this port")
UNSUPPORTED_MECHANISM = Row(False, "unsupported SASL mechanism, use PLAIN")  # RFC 5034 §4
AUTH_CANCELLED = Row(False, "authentication cancelled")  # RFC 5034 §4: "*" cancels
BAD_SASL_RESPONSE = Row(False, "malformed SASL PLAIN response")  # RFC 5034 §4, RFC 4616 §2
LINE_TOO_LONG = Row(False, "line too long")
TOO_MANY_ERRORS = Row(False, "too many bad commands, closing connection")
TOO_MANY_CONNECTIONS = Row(False, "too many connections, try again later", RespCode.SYS_TEMP)
INTERNAL_ERROR = Row(False, "internal error, incident {incident}", RespCode.SYS_TEMP)
# RFC 1939 §6: a failed UPDATE still ends the session.
NOT_REMOVED = Row(
    False, "some deleted messages not removed, incident {incident}", RespCode.SYS_TEMP
)


def multiline(status: bytes, lines: Iterable[bytes]) -> bytes:
    """A complete multi-line response: status line, dot-stuffed lines, terminator."""
    stuffer = DotStuffer()
    # One feed for the whole listing: the stuffer's output does not depend on chunking.
    listed = list(lines)
    body = stuffer.feed(CRLF.join(listed) + CRLF) if listed else b""
    return status + body + stuffer.finish()


class DotStuffer:
    """Turns a message, fed in arbitrary chunks, into the body of a multi-line response.

    Line endings become CRLF (Maildir files often hold bare LF), lines starting
    with "." get a second "." (RFC 1939 §3), a final CRLF is added if missing,
    and `finish()` appends the terminating ".". With `body_lines` set, output
    stops after the headers, the blank line and that many body lines (TOP,
    RFC 1939 §7); `complete` then tells the caller to stop reading.
    """

    def __init__(self, body_lines: int | None = None) -> None:
        self._body_lines = body_lines
        self._in_headers = True
        self._line_length = 0  # octets of the current, unfinished line seen so far
        self._carry = b""  # a trailing CR whose LF may come in the next chunk
        self._at_line_start = True
        self._wrote_anything = False
        self.complete = False

    def feed(self, chunk: bytes) -> bytes:
        if self.complete or not (chunk or self._carry):
            return b""
        text = self._carry + chunk
        self._carry = b"\r" if text.endswith(b"\r") else b""
        if self._carry:
            text = text[:-1]
        # CRLF and bare LF both become CRLF; a CR not followed by LF stays as it is.
        text = text.replace(CRLF, b"\n").replace(b"\n", CRLF)
        if self._body_lines is not None:
            text = self._cut(text)
        return self._stuff(text)

    def finish(self) -> bytes:
        tail = b"" if self.complete else self._stuff(self._carry)
        self._carry = b""
        if self._wrote_anything and not self._at_line_start:
            tail += CRLF
        self.complete = True
        return tail + TERMINATOR

    def _stuff(self, text: bytes) -> bytes:
        if not text:
            return b""
        stuffed = text.replace(b"\n.", b"\n..")
        if self._at_line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        self._at_line_start = stuffed.endswith(b"\n")
        self._wrote_anything = True
        return stuffed

    def _cut(self, text: bytes) -> bytes:
        """Keep text up to the last line TOP asks for; `text` has CRLF endings only."""
        assert self._body_lines is not None
        start = 0
        while (newline := text.find(b"\n", start)) != -1:
            length = self._line_length + newline - start  # includes the CR of CRLF
            self._line_length = 0
            start = newline + 1
            if self._in_headers:
                self._in_headers = length != 1  # an empty line ends the headers
                if not self._in_headers and self._body_lines == 0:
                    return self._stop(text[:start])
            else:
                self._body_lines -= 1
                if self._body_lines == 0:
                    return self._stop(text[:start])
        self._line_length += len(text) - start
        return text

    def _stop(self, text: bytes) -> bytes:
        self.complete = True
        self._carry = b""
        return text
