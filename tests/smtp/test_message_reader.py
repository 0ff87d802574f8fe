"""smtp/message_reader.py without a server: MailData fed in pieces, and read_mail_data on a
real asyncio StreamReader fed in random splits, both held to aiosmtpd's line-by-line
reading written out plainly below (`line_by_line`).
"""

from __future__ import annotations

import asyncio
import itertools
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost.smtp.message_reader import (
    CHUNK,
    MAX_LINE,
    TERMINATOR,
    DataRefusal,
    MailData,
    read_mail_data,
    terminator_progress,
    unstuff,
)
from tests.smtp.dialogue import stuffed

Outcome = bytes | DataRefusal


def line_by_line(stream: bytes, size_limit: int | None) -> tuple[Outcome, bytes]:
    """The reference: aiosmtpd's reading of DATA, one CRLF-ended line at a time, up to
    the line "."; the outcome and what follows. The first line to break a limit
    decides: longer than MAX_LINE, else the size (octets as sent) past the limit."""
    kept: list[bytes] = []
    size, refusal, start = 0, None, 0
    while True:
        end = stream.index(b"\r\n", start) + 2
        line, start = stream[start:end], end
        if line == b".\r\n":
            return (refusal or b"".join(kept)), stream[start:]
        size += len(line)
        if refusal is None and len(line) > MAX_LINE:
            refusal = DataRefusal.LINE_TOO_LONG
        elif refusal is None and size_limit is not None and size > size_limit:
            refusal = DataRefusal.TOO_BIG
        kept.append(line[1:] if line.startswith(b".") else line)


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c for c in cuts if 0 < c < len(stream))})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


# Pieces of mail data that make dots at line starts, bare CRs and LFs, CRLFs split
# anywhere, ends that are not ends, and lines around the limit.
_TOKENS = st.sampled_from(
    [b"a", b"b c", b".", b"..", b"\r\n", b"\r", b"\n", b"\r\n.", b"x" * 300, b"y" * 998]
)
_AFTER = st.sampled_from(
    [b"", b"QUIT\r\n", b".\r\n", b"\r\n.\r\nNOOP\r\n", b"MAIL FROM:<a@b.test>\r\nRCPT"]
)


@st.composite
def data_streams(draw: st.DrawFn) -> bytes:
    """Mail data with its end (an empty body ends at once), then pipelined bytes."""
    body = b"".join(draw(st.lists(_TOKENS, max_size=30)))
    return (body + TERMINATOR if body else b".\r\n") + draw(_AFTER)


_OCTETS = st.sampled_from([b"\r", b"\n", b".", b"x"])
size_limits = st.one_of(st.none(), st.integers(0, 4000))


@given(st.data())
def test_terminator_progress_is_the_longest_partial_end(data: st.DataObject) -> None:
    matched = data.draw(st.integers(0, len(TERMINATOR) - 1))
    needed = len(TERMINATOR) - matched
    octets = b"".join(data.draw(st.lists(_OCTETS, min_size=needed, max_size=needed)))
    text = TERMINATOR[:matched] + octets
    expected = max(n for n in range(len(TERMINATOR) + 1) if text.endswith(TERMINATOR[:n]))
    assert terminator_progress(matched, octets) == expected


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([], b""),
        ([b"a\r\n"], b"a\r\n"),
        ([b".a\r\n..\r\n"], b"a\r\n.\r\n"),
        ([b"a\r", b"\n", b".b\r\n"], b"a\r\nb\r\n"),  # CRLF, then the dot, in three pieces
        ([b"a\r\n", b".", b".\r\n"], b"a\r\n.\r\n"),
        ([b"a\r.b\n.c\r\n"], b"a\r.b\n.c\r\n"),  # no dot follows a CRLF: nothing removed
        ([b"x" * 999 + b"\r\n"], b"x" * 999 + b"\r\n"),  # 1001 octets
        ([b"." + b"x" * 998, b"\r\n"], b"x" * 998 + b"\r\n"),  # 1001, dot-stuffed
    ],
)
def test_mail_data_is_unstuffed_across_pieces(pieces: list[bytes], expected: bytes) -> None:
    data = MailData(None)
    for piece in pieces:
        data.feed(piece)
    assert data.outcome() == expected


@pytest.mark.parametrize(
    ("content", "limit", "expected"),
    [
        (b"x" * 1000 + b"\r\n", None, DataRefusal.LINE_TOO_LONG),  # 1002 octets
        (b"x" * 999 + b"\n\r\n", None, DataRefusal.LINE_TOO_LONG),  # a bare LF ends no line
        (b"ab\r\n..\r\n", 8, b"ab\r\n.\r\n"),  # 8 octets as sent: at the limit
        (b"ab\r\n..\r\n", 7, DataRefusal.TOO_BIG),  # counted as sent, dots included
        (b"ab\r\n" + b"x" * 1000 + b"\r\n", 10, DataRefusal.LINE_TOO_LONG),  # both: too long
        (b"abcdef\r\n" + b"x" * 1000 + b"\r\n", 7, DataRefusal.TOO_BIG),  # the earlier line
    ],
)
def test_the_first_line_over_a_limit_decides(
    content: bytes, limit: int | None, expected: Outcome
) -> None:
    data = MailData(limit)
    data.feed(content)
    assert data.outcome() == expected


@given(stream=data_streams(), cuts=st.lists(st.integers(0, 5000), max_size=12), limit=size_limits)
def test_mail_data_in_any_pieces_is_read_as_line_by_line(
    stream: bytes, cuts: list[int], limit: int | None
) -> None:
    expected, after = line_by_line(stream, limit)
    content = stream[: len(stream) - len(after) - 3]  # up to the end's "." CRLF
    data = MailData(limit)
    for piece in cut(content, cuts):
        data.feed(piece)
    assert data.outcome() == expected


@given(st.lists(st.sampled_from([b"a", b".", b"..", b" ", b"\r\n"]), max_size=40))
def test_unstuffing_undoes_stuffing(tokens: list[bytes]) -> None:
    content = b"".join(tokens)
    assert unstuff(stuffed(content), at_line_start=True) == content


async def _read(
    stream: bytes, cuts: list[int], limit: int, size_limit: int | None
) -> tuple[Outcome, bytes]:
    reader = asyncio.StreamReader(limit=limit)
    reading = asyncio.create_task(read_mail_data(reader, size_limit))
    for piece in cut(stream, cuts):
        reader.feed_data(piece)
        await asyncio.sleep(0)  # the reader takes what has come so far
    reader.feed_eof()
    outcome = await reading
    return outcome, await reader.read()


@settings(max_examples=300)
@given(
    stream=data_streams(),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    limit=st.sampled_from([1, 3, 5, 8, 64, 1001, CHUNK]),
    size_limit=size_limits,
)
def test_any_split_of_the_stream_reads_as_line_by_line_and_leaves_the_rest(
    stream: bytes, cuts: list[int], limit: int, size_limit: int | None
) -> None:
    # `limit` is the StreamReader's: small ones make every chunk boundary fall
    # somewhere inside lines, CRLFs and ends.
    assert asyncio.run(_read(stream, cuts, limit, size_limit)) == line_by_line(stream, size_limit)


@pytest.mark.parametrize("stream", [b".\r\n", b"a\r\n.\r\n", b"\r\n.\r\n", b"..\r\n.\r\n"])
def test_the_end_is_found_octet_by_octet_at_the_start(stream: bytes) -> None:
    cuts = list(range(len(stream) + 6))
    after = b"NOOP\r\n"
    outcome = asyncio.run(_read(stream + after, cuts, CHUNK, None))
    assert outcome == line_by_line(stream + after, None)
    assert outcome[1] == after


_LINES = (b"x" * 78 + b"\r\n") * (CHUNK // 80)


@pytest.mark.parametrize(
    ("chunk", "size_limit", "refusal"),
    [
        (_LINES, 10 * len(_LINES), DataRefusal.TOO_BIG),
        (b"x" * CHUNK, None, DataRefusal.LINE_TOO_LONG),
    ],
)
def test_data_past_a_limit_is_let_go(
    chunk: bytes, size_limit: int | None, refusal: DataRefusal
) -> None:
    tracemalloc.start()
    try:
        data = MailData(size_limit)
        for _ in range(40):
            data.feed(bytes(bytearray(chunk)))  # a new object each time, as from a socket
        data.feed(b"\r\n")
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.outcome() is refusal
    # What was kept up to the limit is let go once it is passed, and nothing after it
    # is kept: 40 chunks went by.
    assert held < len(chunk), held
    assert peak < (size_limit or 0) + 3 * len(chunk), peak


def test_a_message_within_the_limit_is_kept_whole() -> None:
    line = b"x" * 77 + b"\r\n"
    chunk = (b"." + line) * (CHUNK // 80)
    data = MailData(size_limit=40 * len(chunk))
    for _ in range(40):
        data.feed(chunk)
    assert data.outcome() == line * (CHUNK // 80) * 40
