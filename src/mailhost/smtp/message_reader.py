"""The mail data of one DATA command (RFC 5321 §4.1.1.4), read in large chunks.

aiosmtpd awaits one line at a time, about 1300 awaits for a 100 KB message. Here
the connection's StreamReader hands over everything it holds up to the end of the
data, and `MailData`, which never touches a socket, checks the line and size
limits and removes the transparency dots on whole chunks with bytes methods.

The end of the data is exactly CRLF "." CRLF. `readuntil(TERMINATOR)` finds it in
the reader's buffer and leaves what follows (the next pipelined command, RFC 2920)
where it is; `read()` and a search of our own could not give those bytes back. It
cannot see an end that begins before the bytes it searches, which only the very
start can do: the CRLF of the DATA line is the first half of the end of an empty
message. So the first octets are taken a few at a time until they cannot be part
of an end (`terminator_progress`); after that every end lies inside the buffer.
"""

from __future__ import annotations

import asyncio
import enum

TERMINATOR = b"\r\n.\r\n"
# The reader's limit: `readuntil` hands a chunk over once it holds this much without
# an end, so a 100 KB message comes in two or three pieces instead of 1300 lines.
# The reader also stops reading the socket while it holds twice this, which bounds
# what a connection buffers beside the message it keeps (128 KiB). aiosmtpd's 1001
# paused and resumed the socket every 2 KB; a loopback or LAN read brings tens of
# KB at once, so much smaller chunks only add wake-ups, much larger ones only memory.
CHUNK = 64 * 1024
# RFC 5321 §4.5.3.1.6: 998 octets and CRLF; aiosmtpd allows one more octet for the
# transparency dot (§4.5.2) on any line, and so do we.
MAX_LINE = 1001
_MAX_TEXT = MAX_LINE - len(b"\r\n")


class DataRefusal(enum.Enum):
    """Why the data was read to its end and then refused."""

    LINE_TOO_LONG = "line too long"
    TOO_BIG = "too big"


def terminator_progress(matched: int, octets: bytes) -> int:
    """How much of TERMINATOR the stream ends with once `octets` follow `matched` of it.

    `octets` must be exactly `len(TERMINATOR) - matched` long: then an end can only
    be completed by the last octet (a shorter partial match needs more octets, a
    longer one would have been `matched`), and len(TERMINATOR) means it was.
    """
    text = TERMINATOR[:matched] + octets
    for length in range(len(TERMINATOR), 0, -1):
        if text.endswith(TERMINATOR[:length]):
            return length
    return 0


def unstuff(octets: bytes, at_line_start: bool) -> bytes:
    """RFC 5321 §4.5.2: a line that starts with "." loses that first dot."""
    if at_line_start and octets.startswith(b"."):
        octets = octets[1:]
    # Returns `octets` itself when there is no dot to remove: no copy.
    return octets.replace(b"\r\n.", b"\r\n")


class MailData:
    """The data of one DATA command as it arrives, in pieces of any size, dot-stuffed.

    Lines end only at CRLF (a bare CR or LF is part of its line, and refused later
    by smtp/session.py). The size counts the octets as sent, dots included, the
    final "." CRLF excluded, as aiosmtpd counted. Once a limit is broken nothing
    more is kept, but the rest is still fed (the client sends it anyway) and the
    first line to break a limit decides the outcome: too long, else too big.
    """

    __slots__ = ("_cr", "_keeping", "_limit", "_line", "_line_start", "_parts", "_refusal", "_size")

    def __init__(self, size_limit: int | None) -> None:
        self._limit = size_limit  # None: no limit
        self._parts: list[bytes] = []
        self._keeping = True
        self._refusal: DataRefusal | None = None
        self._size = 0  # octets counted so far
        self._line = 0  # octets of the current line so far, without its CRLF
        self._line_start = True
        # A piece that ends with CR is held back by that octet, so that every CRLF
        # is seen whole whatever the piece boundaries.
        self._cr = False

    def feed(self, octets: bytes) -> None:
        """The next octets of the data, up to (not including) the final "." CRLF."""
        if self._cr:
            octets = b"\r" + octets
        self._cr = octets.endswith(b"\r")
        if self._cr:
            octets = octets[:-1]
        if not octets or self._refusal is not None:
            return
        segments = octets.split(b"\r\n")
        size = self._size + len(octets)
        if self._keeping and self._fits(segments, size):
            self._size = size
            self._line = len(segments[-1]) + (self._line if len(segments) == 1 else 0)
            self._keep(octets)
            return
        self._check_lines(segments)
        if self._refusal is not None or (self._limit is not None and self._size > self._limit):
            self._keeping = False
            self._parts.clear()  # refused either way: free the memory now
        if self._keeping:
            self._keep(octets)

    def outcome(self) -> bytes | DataRefusal:
        """The unstuffed message, or why it is refused, once all the data was fed (it
        ends with CRLF, or is empty). The kept pieces become one bytes object, as the
        DATA hook wants it, and are let go."""
        if self._refusal is None and self._limit is not None and self._size > self._limit:
            self._refusal = DataRefusal.TOO_BIG
        if self._refusal is not None:
            return self._refusal
        content = b"".join(self._parts)
        self._parts.clear()
        return content

    def _fits(self, segments: list[bytes], size: int) -> bool:
        """No limit is near in these segments: the common case, checked in C."""
        if self._limit is not None and size > self._limit:
            return False
        if self._line + len(segments[0]) > _MAX_TEXT:
            return False
        return len(segments) == 1 or max(map(len, segments[1:])) <= _MAX_TEXT

    def _check_lines(self, segments: list[bytes]) -> None:
        """Count line by line and find the first line that breaks a limit."""
        *complete, partial = segments
        for segment in complete:
            line = self._line + len(segment)
            self._line = 0
            self._size += len(segment) + 2
            if self._refusal is not None:
                continue
            if line > _MAX_TEXT:
                self._refusal = DataRefusal.LINE_TOO_LONG
            elif self._limit is not None and self._size > self._limit:
                self._refusal = DataRefusal.TOO_BIG
        self._line += len(partial)
        self._size += len(partial)
        if self._refusal is None and self._line > _MAX_TEXT:
            self._refusal = DataRefusal.LINE_TOO_LONG  # whatever ends it, it is too long

    def _keep(self, octets: bytes) -> None:
        self._parts.append(unstuff(octets, self._line_start))
        self._line_start = octets.endswith(b"\r\n")


async def read_mail_data(
    reader: asyncio.StreamReader, size_limit: int | None
) -> bytes | DataRefusal:
    """Read the data after a 354 up to and including its end; the message, or why not.

    Whatever follows the end stays in `reader`. The caller's idle timeout applies
    as ever: closing the connection cancels this read.
    """
    data = MailData(size_limit)
    # The start: the DATA line's CRLF is `matched` octets of an end already. The
    # last three octets taken may be the "." CRLF of the end, so they wait.
    matched, waiting = 2, b""
    while matched:
        octets = await reader.readexactly(len(TERMINATOR) - matched)
        matched = terminator_progress(matched, octets)
        taken = waiting + octets
        if matched == len(TERMINATOR):
            data.feed(taken[:-3])
            return data.outcome()
        data.feed(taken if matched == 0 else taken[:-3])
        waiting = taken[-3:]
    while True:
        try:
            piece = await reader.readuntil(TERMINATOR)
        except asyncio.LimitOverrunError as overrun:
            # No end in the buffer (or one further on than the limit): take all but
            # the last four octets, which may begin one.
            data.feed(await reader.read(overrun.consumed))
            continue
        data.feed(piece[:-3])  # the end's CRLF ends the last line
        return data.outcome()
