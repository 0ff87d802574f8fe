"""The operator's log: `name key=value` lines a hostile value cannot break, and JSON lines
with the fields as keys."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.logs import (
    EVENT_ATTRIBUTE,
    FIELDS_ATTRIBUTE,
    JsonFormatter,
    TextFormatter,
    configure,
    event,
    event_text,
)
from mailhost.settings import LogFormat, LogLevel, LogSettings

# 2026-12-01T02:03:04.123Z
MOMENT = 1796090584.123
KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
_PAIR = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|[^ "]+)')
_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(.))")


def parse(line: str) -> tuple[str, dict[str, str]]:
    """Read a text event back: the reader an operator's script would write."""
    name, _, rest = line.partition(" ")
    fields: dict[str, str] = {}
    position = 0
    rest = " " + rest if rest else ""
    while position < len(rest):
        match = _PAIR.match(rest, position)
        assert match is not None, f"unreadable at {rest[position:]!r}"
        fields[match.group(1)] = unquote(match.group(2))
        position = match.end()
    return name, fields


def unquote(token: str) -> str:
    if not token.startswith('"'):
        return token
    simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}

    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2) or match.group(3)
        return chr(int(code, 16)) if code else simple[match.group(4)]

    return _ESCAPE.sub(one, token[1:-1])


def record(message: str, **attributes: object) -> logging.LogRecord:
    entry = logging.LogRecord("mailhost.outbound", logging.INFO, __file__, 1, message, None, None)
    entry.created, entry.msecs = MOMENT, 123.0
    entry.__dict__.update(attributes)
    return entry


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": "19a3-4f2c", "to": "zed@remote.test"}, "delivery id=19a3-4f2c to=zed@remote.test"),
        ({"reply": "250 2.0.0 Ok"}, 'delivery reply="250 2.0.0 Ok"'),
        ({"reply": ""}, 'delivery reply=""'),
        ({"helo": 'say "hi"'}, r'delivery helo="say \"hi\""'),
        ({"helo": "a=b"}, 'delivery helo="a=b"'),
        ({"helo": "a\\b"}, r"delivery helo=a\b"),
        ({"helo": 'a\\b "c"'}, r'delivery helo="a\\b \"c\""'),
        ({"helo": "x\r\nfake line"}, r'delivery helo="x\r\nfake line"'),
        ({"helo": "x\x00\x1b\u2028"}, r'delivery helo="x\x00\x1b\u2028"'),
        ({"to": ["a@x.test", "b@y.test"]}, "delivery to=a@x.test,b@y.test"),
        ({"attempt": 2, "delay": 3.5, "tls": True}, "delivery attempt=2 delay=3.5 tls=true"),
    ],
)
def test_text_form_quotes_what_would_be_ambiguous(fields: dict[str, object], expected: str) -> None:
    assert event_text("delivery", fields) == expected


def test_an_event_leaves_none_out_and_carries_its_fields_on_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("mailhost.tests.logs")
    with caplog.at_level(logging.INFO, logger=logger.name):
        event(logger, "bounce", id="19a3", to=("a@x.test",), relay=None, attempt=1)
        event(logger, "noise", level=logging.DEBUG, id="not shown")

    [entry] = caplog.records
    assert entry.getMessage() == "bounce id=19a3 to=a@x.test attempt=1"
    assert getattr(entry, EVENT_ATTRIBUTE) == "bounce"
    assert getattr(entry, FIELDS_ATTRIBUTE) == {"id": "19a3", "to": ["a@x.test"], "attempt": 1}


@given(fields=st.dictionaries(KEYS, st.text(), max_size=5), name=KEYS)
def test_any_field_value_gives_one_line_that_reads_back(fields: dict[str, str], name: str) -> None:
    text = event_text(name, fields)
    entry = record(text, **{EVENT_ATTRIBUTE: name, FIELDS_ATTRIBUTE: fields})

    line = TextFormatter().format(entry)
    as_json = JsonFormatter().format(entry)

    assert len(line.splitlines()) == 1
    assert len(as_json.splitlines()) == 1
    assert line.isprintable()
    assert parse(text) == (name, fields)
    assert line == f"2026-12-01T02:03:04.123Z info mailhost.outbound: {text}"
    reserved = {"time", "level", "logger", "event", "message", "exception"}
    ours = {k: v for k, v in fields.items() if k not in reserved}
    assert {k: v for k, v in json.loads(as_json).items() if k in ours} == ours


@given(message=st.text())
def test_a_plain_message_stays_on_one_line_too(message: str) -> None:
    line = TextFormatter().format(record(message))

    assert len(line.splitlines()) == 1
    assert line.startswith("2026-12-01T02:03:04.123Z info mailhost.outbound: ")


def test_an_exception_is_indented_under_its_line() -> None:
    try:
        raise ValueError("bad\n2026-12-01T02:03:04.123Z info mailhost.smtp: forged")
    except ValueError:
        entry = record("delivery failed", exc_info=sys.exc_info())

    first, *rest = TextFormatter().format(entry).splitlines()

    assert first == "2026-12-01T02:03:04.123Z info mailhost.outbound: delivery failed"
    assert rest and all(line.startswith("  ") for line in rest)


def test_json_lines_carry_the_fields_as_keys() -> None:
    fields = {"id": "19a3", "to": ["a@x.test"], "attempt": 2, "delay": 1.5, "level": "nope"}
    entry = record(event_text("delivery", fields), **{EVENT_ATTRIBUTE: "delivery"})
    entry.__dict__[FIELDS_ATTRIBUTE] = fields
    try:
        raise OSError("disk on fire")
    except OSError:
        entry.exc_info = sys.exc_info()

    parsed = json.loads(JsonFormatter().format(entry))

    assert parsed == {
        "time": "2026-12-01T02:03:04.123Z",
        "level": "info",  # a field cannot replace the line's own keys
        "logger": "mailhost.outbound",
        "event": "delivery",
        "message": "delivery id=19a3 to=a@x.test attempt=2 delay=1.5 level=nope",
        "id": "19a3",
        "to": ["a@x.test"],
        "attempt": 2,
        "delay": 1.5,
        "exception": parsed["exception"],
    }
    assert parsed["exception"].endswith("OSError: disk on fire")
    plain = json.loads(JsonFormatter().format(record("just text")))
    assert (plain["event"], plain["message"]) == (None, "just text")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`configure` changes the process's logging: put it back for the other tests."""
    root = logging.getLogger()
    names = ("mailhost", "mail.log", "uvicorn", "aiosmtplib")
    handlers, root_level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_configure_installs_one_handler_however_often_it_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = len(logging.getLogger().handlers)
    configure(LogSettings(format=LogFormat.TEXT, level=LogLevel.DEBUG))
    configure(LogSettings(format=LogFormat.JSON, level=LogLevel.INFO))

    event(logging.getLogger("mailhost.outbound"), "delivery", id="19a3", status="sent")
    logging.getLogger("mailhost.outbound").debug("below the level")
    logging.getLogger("mail.log").info("aiosmtpd chatter")
    logging.getLogger("mail.log").warning("aiosmtpd trouble")

    assert len(logging.getLogger().handlers) == before + 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("mailhost.outbound", "delivery id=19a3 status=sent"),
        ("mail.log", "aiosmtpd trouble"),
    ]
    assert (lines[0]["event"], lines[0]["id"], lines[0]["status"]) == ("delivery", "19a3", "sent")
