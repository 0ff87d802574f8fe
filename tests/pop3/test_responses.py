"""POP3 replies and dot-stuffing: table tests, plus hypothesis over bodies split into any chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.pop3 import responses as r
from mailhost.pop3.responses import DotStuffer, RespCode, err, multiline, ok


def _unstuff(output: bytes) -> bytes:
    """What a client recovers from a multi-line body (RFC 1939 §3), checking the framing."""
    assert output.endswith(b".\r\n")
    assert output == b".\r\n" or output.endswith(b"\r\n.\r\n")
    lines = output[:-3].split(b"\r\n")
    assert lines.pop() == b""  # the body is whole lines
    for line in lines:
        assert line != b".", "a bare '.' line inside the body would end the response early"
        assert b"\n" not in line, "bare LF on the wire"
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


def _normalise(body: bytes) -> bytes:
    """CRLF line endings throughout and a final CRLF: what a client should receive."""
    text = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return text if not text or text.endswith(b"\r\n") else text + b"\r\n"


def _top(body: bytes, lines: int) -> bytes:
    """RFC 1939 §7 TOP, computed on the whole message at once."""
    kept = _normalise(body).splitlines(keepends=True)
    # splitlines also splits at bare CR; rejoin so that only CRLF ends a line.
    whole: list[bytes] = []
    for piece in kept:
        if whole and not whole[-1].endswith(b"\r\n"):
            whole[-1] += piece
        else:
            whole.append(piece)
    if b"\r\n" in whole:
        blank = whole.index(b"\r\n")
        whole = whole[: blank + 1 + lines]
    return b"".join(whole)


def _stuff(chunks: list[bytes], body_lines: int | None = None) -> bytes:
    stuffer = DotStuffer(body_lines)
    return b"".join(stuffer.feed(chunk) for chunk in chunks) + stuffer.finish()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (ok(), b"+OK\r\n"),
        (ok("2 320"), b"+OK 2 320\r\n"),
        (err("no such message"), b"-ERR no such message\r\n"),
        (err("in use", RespCode.IN_USE), b"-ERR [IN-USE] in use\r\n"),
        (r.BAD_LOGIN.render(), b"-ERR [AUTH] invalid login or password\r\n"),
        (r.STAT.render(count=2, size=320), b"+OK 2 320\r\n"),
        (r.LIST_ONE.render(msg=1, size=120), b"+OK 1 120\r\n"),
        (
            r.INTERNAL_ERROR.render(incident="ab12"),
            b"-ERR [SYS/TEMP] internal error, incident ab12\r\n",
        ),
        (r.GREETING.render(hostname="mail.example.com"), b"+OK mail.example.com POP3 ready\r\n"),
    ],
)
def test_status_lines_render_with_resp_codes(reply: bytes, expected: bytes) -> None:
    assert reply == expected


def test_status_line_text_cannot_inject_lines() -> None:
    assert err("evil\r\n+OK forged") == b"-ERR evil??+OK forged\r\n"


def test_status_line_is_capped_at_512_octets() -> None:
    line = ok("x" * 1000)
    assert len(line) == r.MAX_RESPONSE_LINE
    assert line.endswith(b"x\r\n")


def test_multiline_stuffs_dots_and_terminates() -> None:
    assert multiline(ok("follows"), [b"1 120", b".hidden", b"."]) == (
        b"+OK follows\r\n1 120\r\n..hidden\r\n..\r\n.\r\n"
    )


def test_multiline_with_no_lines_is_just_the_terminator() -> None:
    assert multiline(ok(), []) == b"+OK\r\n.\r\n"


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([], b".\r\n"),
        ([b""], b".\r\n"),
        ([b"Subject: x\r\n\r\nhi\r\n"], b"Subject: x\r\n\r\nhi\r\n.\r\n"),
        ([b"Subject: x\n\nhi\n"], b"Subject: x\r\n\r\nhi\r\n.\r\n"),
        ([b"no final newline"], b"no final newline\r\n.\r\n"),
        ([b".\r\n"], b"..\r\n.\r\n"),
        ([b"a\r\n.b\r\n..c\r\n"], b"a\r\n..b\r\n...c\r\n.\r\n"),
        ([b"a\r", b"\n.b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r\n", b".", b"b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b"", b"\n", b".\r\n"], b"a\r\n..\r\n.\r\n"),
        ([b"bare\rcr"], b"bare\rcr\r\n.\r\n"),
        ([b"ends in cr\r"], b"ends in cr\r\r\n.\r\n"),
        ([b"mid.dot\r\n"], b"mid.dot\r\n.\r\n"),
    ],
)
def test_dot_stuffer_examples(chunks: list[bytes], expected: bytes) -> None:
    assert _stuff(chunks) == expected


_MESSAGE = b"From: a@b.test\r\nSubject: s\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (0, b"From: a@b.test\r\nSubject: s\r\n\r\n.\r\n"),
        (1, b"From: a@b.test\r\nSubject: s\r\n\r\nline 1\r\n.\r\n"),
        (2, b"From: a@b.test\r\nSubject: s\r\n\r\nline 1\r\n..line 2\r\n.\r\n"),
        (10, _MESSAGE.replace(b"\n.", b"\n..") + b".\r\n"),
    ],
)
def test_top_sends_headers_blank_line_and_n_body_lines(lines: int, expected: bytes) -> None:
    assert _stuff([_MESSAGE], lines) == expected


def test_top_finds_the_blank_line_after_a_header_split_across_chunks() -> None:
    chunks = [b"Subj", b"ect: s\r\n\r\nbody 1\r\nbody 2\r\n"]
    assert _stuff(chunks, 1) == b"Subject: s\r\n\r\nbody 1\r\n.\r\n"


def test_top_on_a_message_without_body_sends_everything() -> None:
    assert _stuff([b"Subject: only headers"], 0) == b"Subject: only headers\r\n.\r\n"


def test_top_reports_complete_so_the_driver_stops_reading() -> None:
    stuffer = DotStuffer(1)
    assert stuffer.feed(b"H: v\n\nbody 1\nbody 2\n") == b"H: v\r\n\r\nbody 1\r\n"
    assert stuffer.complete
    assert stuffer.feed(b"more body\n") == b""
    assert stuffer.finish() == b".\r\n"


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(body)) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


# Bodies rich in the bytes that matter: CR, LF and '.'.
_bodies = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"From: x", b""])
    | st.binary(max_size=8),
    max_size=40,
).map(b"".join)
_line_ends = st.sampled_from([b"\r\n", b"\n"])
_lines = st.lists(st.tuples(_bodies, _line_ends).map(b"".join), max_size=8).map(b"".join)
# Message-shaped: header lines, a blank line (sometimes missing), body lines.
_messages = st.builds(
    lambda head, blank, body: head + blank + body,
    _lines,
    st.sampled_from([b"\r\n", b"\n", b""]),
    _lines,
)
_cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


@given(_bodies, _cuts)
def test_unstuffing_any_chunking_gives_back_the_normalised_body(
    body: bytes, cuts: list[int]
) -> None:
    assert _unstuff(_stuff(_split(body, cuts))) == _normalise(body)


@given(_messages | _bodies, _cuts, st.integers(min_value=0, max_value=6))
def test_top_of_any_chunking_matches_top_of_the_whole_message(
    body: bytes, cuts: list[int], lines: int
) -> None:
    assert _unstuff(_stuff(_split(body, cuts), lines)) == _top(body, lines)


# Listing lines as the machine makes them: no CR or LF inside, dots anywhere.
_listing_lines = st.lists(
    st.lists(st.sampled_from([b".", b"..", b"1", b" ", b"x"]) | st.binary(max_size=4), max_size=6)
    .map(b"".join)
    .map(lambda line: line.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=12,
)


@given(_listing_lines)
def test_multiline_follows_the_rfc_rule_line_by_line(lines: list[bytes]) -> None:
    # RFC 1939 §3: each line ends in CRLF, a line starting with "." gets another one,
    # and "." CRLF ends the response.
    expected = b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines
    )
    assert multiline(ok(), lines) == b"+OK\r\n" + expected + b".\r\n"
