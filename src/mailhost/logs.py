"""How mailhost writes its log: one greppable line per event, as text or JSON, on stderr.

An event is a name and fields, `delivery id=… to=… status=sent`, as Postfix
writes them. Field values often come from the network (addresses, remote
replies, HELO names), so every control character in them is escaped: a
hostile client can never start a line of its own. The fields also ride on the
LogRecord, so the JSON form carries them as keys rather than as text.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import TextIO, cast

from mailhost.settings import LogFormat, LogLevel, LogSettings

# Where `event` puts its name and fields on the LogRecord (for the JSON formatter).
EVENT_ATTRIBUTE = "mailhost_event"
FIELDS_ATTRIBUTE = "mailhost_fields"

Field = str | int | float | bool | list[str]

_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}
# Libraries that chatter at INFO (aiosmtpd logs every connection as "mail.log");
# the operator's level applies to mailhost's own lines only.
_QUIET_LIBRARIES = ("mail.log", "uvicorn", "aiosmtplib")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SCALARS = frozenset({str, int, float, bool})
# Keys of a JSON line that a field of the same name must not replace.
_RESERVED = frozenset({"time", "level", "logger", "event", "message", "exception"})


def event(
    logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: object
) -> None:
    """One line an operator can grep, like Postfix's: `<name> key=value key=value`."""
    if not logger.isEnabledFor(level):
        return
    kept: dict[str, Field] = {}
    parts = [name]
    # The MX writes a line per message: the common field types are handled inline here
    # rather than through `_field`, `_text` and `quote`, a third of an event's cost.
    for key, value in fields.items():
        kind = type(value)
        if kind is str:
            text = cast(str, value)
        elif kind is int:
            text = str(value)
        elif value is None:
            continue
        else:
            value = _field(value)
            text = _text(value)
        kept[key] = cast(Field, value)
        if text and text.isprintable() and " " not in text and "=" not in text and '"' not in text:
            parts.append(f"{key}={text}")
        else:
            parts.append(f"{key}={quote(text)}")
    # A LogRecord made here rather than by log() or makeRecord(): log() walks the stack
    # for the caller's file and line, which no formatter here prints, and makeRecord
    # checks `extra` key by key; together half of an event's cost on the MX's path.
    record = logging.LogRecord(logger.name, level, "", 0, " ".join(parts), None, None)
    record.__dict__[EVENT_ATTRIBUTE] = name
    record.__dict__[FIELDS_ATTRIBUTE] = kept
    logger.handle(record)


def event_text(name: str, fields: Mapping[str, object]) -> str:
    """`name key=value ...`, each value quoted when it has to be (see `quote`)."""
    return " ".join([name, *(_pair(key, value) for key, value in fields.items())])


def _pair(key: str, value: object) -> str:
    return f"{key}={quote(_text(value))}"


def quote(value: str) -> str:
    """`value` as one token: bare if it is plain, else in double quotes with escapes."""
    # str methods, not a scan in Python: this runs for every field of every line.
    if value and value.isprintable() and " " not in value and "=" not in value and '"' not in value:
        return value
    return '"' + "".join(_escaped(c) for c in value) + '"'


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    # Line and paragraph separators, NEL, bidi controls: never raw in a log line.
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _field(value: object) -> Field:
    if type(value) in _SCALARS:  # the common case first: one lookup, no isinstance chain
        return cast(Field, value)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return str(value)


def _text(value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _timestamp(record: logging.LogRecord) -> str:
    """UTC ISO 8601 with milliseconds: `2026-12-01T02:03:04.123Z`."""
    return f"{_second(int(record.created))}.{int(record.msecs):03d}Z"


@functools.lru_cache(maxsize=4)
def _second(epoch: int) -> str:
    # A busy server logs many lines a second; strftime once for each of them.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


class TextFormatter(logging.Formatter):
    """`2026-12-01T02:03:04.123Z info mailhost.outbound: delivery id=… status=sent`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not hasattr(record, EVENT_ATTRIBUTE):
            # Plain log calls may carry client data too; keep them to one line as well.
            message = "".join(c if c == " " or c.isprintable() else _escaped(c) for c in message)
        line = f"{_timestamp(record)} {record.levelname.lower()} {record.name}: {message}"
        if record.exc_info:
            # Indented, so no line of a traceback (its messages included) looks like an entry.
            trace = self.formatException(record.exc_info)
            line += "".join(f"\n  {part}" for part in trace.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, EVENT_ATTRIBUTE, None),
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTRIBUTE, {})
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in _RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ensure_ascii: also escapes U+2028/U+2029, which some readers take for line ends.
        return json.dumps(entry, ensure_ascii=True, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """The one handler `configure` installs; found again by its class."""

    def emit(self, record: logging.LogRecord) -> None:
        # StreamHandler.emit flushes after every line, taking the lock a second time;
        # stderr is line-buffered (Python 3.9+), so its write has already gone out.
        try:
            line = self.format(record) + "\n"
            stream = self.stream
            stream.write(line)
            if not getattr(stream, "line_buffering", False):
                stream.flush()
        except RecursionError:  # as StreamHandler.emit: never hide a runaway recursion
            raise
        except Exception:
            self.handleError(record)


def configure(settings: LogSettings) -> None:
    """Send every log line of the process to stderr in the configured form (idempotent).

    The handler sits on the root logger, so warnings of libraries come out in the same
    form (one JSON object per line stays true); mailhost's own loggers pass at the
    configured level, everything else at WARNING.
    """
    # No line shows the thread or process, so records need not look them up
    # (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format is LogFormat.JSON else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("mailhost").setLevel(_LEVELS[settings.level])
    for library in _QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
