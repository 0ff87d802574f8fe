"""Delivery status notifications (RFC 3464) for recipients we could not deliver to.

A DSN is a multipart/report (RFC 6522) of three parts: a note for people,
the machine-readable message/delivery-status, and the original message's
header (text/rfc822-headers, RFC 6522 §5: enough to identify it without
returning a large body). It is sent with the null reverse-path, so a DSN
that cannot be delivered is never answered by another (RFC 5321 §4.5.5);
and mail from the null sender is never bounced at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

MAX_HEADER_BYTES = 64 * 1024
_CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    recipient: str
    reply: str  # "550 5.1.1 no such user" or our own conclusion ("556 5.1.10 null MX")
    remote_host: str = ""  # "" when no server answered (DNS, expiry without a reply)


def should_bounce(sender: str) -> bool:
    """RFC 5321 §4.5.5 / RFC 3464 §2: never notify the null reverse-path."""
    return sender.strip() not in ("", "<>")


def status_code(reply: str) -> str:
    """The enhanced status code (RFC 3463) of a reply, or one derived from its basic code."""
    parts = reply.split()
    if len(parts) > 1 and _is_enhanced(parts[1]):
        return parts[1]
    basic = parts[0] if parts else ""
    return "4.0.0" if basic.startswith("4") else "5.0.0"


def compose_dsn(
    *,
    reporting_mta: str,
    sender: str,
    failures: Sequence[FailedRecipient],
    original: bytes,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """The whole DSN message, CRLF line endings, ready to deliver to `sender`."""
    boundary = f"=_mailhost_dsn_{secrets.token_hex(12)}"
    parts = [
        _part("text/plain; charset=us-ascii", _explanation(reporting_mta, failures)),
        _part("message/delivery-status", _status_fields(reporting_mta, failures, arrival)),
        _part("text/rfc822-headers", original_header(original).decode("ascii", "replace")),
    ]
    body = "".join(f"--{boundary}{_CRLF}{part}{_CRLF}" for part in parts)
    body += f"--{boundary}--{_CRLF}"
    headers = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{sender}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5: no auto-responder answers this
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    return (_CRLF.join(headers) + _CRLF + _CRLF + body).encode("ascii", "replace")


def original_header(message: bytes) -> bytes:
    """The header section of a message (up to the first empty line), capped in size."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = message.find(separator)
        if end >= 0:
            header = message[: end + len(separator) // 2]
            break
    else:
        header = message
    return header[:MAX_HEADER_BYTES]


def _explanation(reporting_mta: str, failures: Sequence[FailedRecipient]) -> str:
    lines = [
        f"This is the mail system at {reporting_mta}.",
        "",
        "Your message could not be delivered to the following recipients:",
        "",
    ]
    for failure in failures:
        where = f" (said {failure.remote_host})" if failure.remote_host else ""
        lines.append(f"  <{failure.recipient}>{where}: {_one_line(failure.reply)}")
    lines += ["", "The header of your message is attached.", ""]
    return _CRLF.join(lines)


def _status_fields(
    reporting_mta: str, failures: Sequence[FailedRecipient], arrival: datetime
) -> str:
    # RFC 3464 §2.2: per-message fields, then one block per recipient, blank-line separated.
    blocks = [f"Reporting-MTA: dns; {reporting_mta}{_CRLF}Arrival-Date: {format_datetime(arrival)}"]
    for failure in failures:
        fields = [
            f"Final-Recipient: rfc822; {failure.recipient}",
            "Action: failed",
            f"Status: {status_code(failure.reply)}",
        ]
        if failure.remote_host:
            fields.append(f"Remote-MTA: dns; {failure.remote_host}")
            fields.append(f"Diagnostic-Code: smtp; {_one_line(failure.reply)}")
        else:
            fields.append(f"Diagnostic-Code: X-mailhost; {_one_line(failure.reply)}")
        blocks.append(_CRLF.join(fields))
    return (_CRLF + _CRLF).join(blocks) + _CRLF


def _part(content_type: str, content: str) -> str:
    if not content.endswith(_CRLF):
        content += _CRLF
    return f"Content-Type: {content_type}{_CRLF}{_CRLF}{content}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_enhanced(token: str) -> bool:
    pieces = token.split(".")
    return (
        len(pieces) == 3
        and pieces[0] in ("2", "4", "5")
        and all(piece.isdigit() and 1 <= len(piece) <= 3 for piece in pieces[1:])
    )
