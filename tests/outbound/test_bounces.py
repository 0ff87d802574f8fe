"""RFC 3464 DSNs as a mail reader parses them, and the rules for who gets one."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import Message

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.outbound.bounces import (
    MAX_HEADER_BYTES,
    FailedRecipient,
    compose_dsn,
    original_header,
    should_bounce,
    status_code,
)

ARRIVED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = datetime(2030, 1, 3, 3, 4, 5, tzinfo=UTC)
ORIGINAL = b"From: bob@example.com\r\nSubject: caf\xc3\xa9 plans\r\n\r\nsecret body\r\n"


def dsn(*failures: FailedRecipient, original: bytes = ORIGINAL) -> Message:
    raw = compose_dsn(
        reporting_mta="mx.example.com",
        sender="bob@example.com",
        failures=failures,
        original=original,
        arrival=ARRIVED,
        now=NOW,
    )
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def parts(message: Message) -> list[Message]:
    payload = message.get_payload()
    assert isinstance(payload, list)
    return [part for part in payload if isinstance(part, Message)]


def test_dsn_is_a_multipart_report_with_the_three_parts() -> None:
    message = dsn(FailedRecipient("alice@remote.test", "550 5.1.1 no such user", "mx.remote.test"))
    assert message["To"] == "<bob@example.com>"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Date"] == "Thu, 03 Jan 2030 03:04:05 +0000"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    text, status, headers = parts(message)
    assert text.get_content_type() == "text/plain"
    assert "<alice@remote.test> (said mx.remote.test): 550 5.1.1 no such user" in str(
        text.get_payload()
    )
    assert status.get_content_type() == "message/delivery-status"
    assert headers.get_content_type() == "text/rfc822-headers"


def test_delivery_status_has_per_message_and_per_recipient_fields() -> None:
    message = dsn(
        FailedRecipient("alice@remote.test", "550 5.1.1 no such user", "mx.remote.test"),
        FailedRecipient("carol@gone.test", "556 5.1.10 domain gone.test accepts no mail"),
    )
    blocks = parts(parts(message)[1])
    assert isinstance(blocks, list) and len(blocks) == 3
    per_message, alice, carol = blocks
    assert per_message["Reporting-MTA"] == "dns; mx.example.com"
    assert per_message["Arrival-Date"] == "Wed, 02 Jan 2030 03:04:05 +0000"
    assert dict(alice.items()) == {
        "Final-Recipient": "rfc822; alice@remote.test",
        "Action": "failed",
        "Status": "5.1.1",
        "Remote-MTA": "dns; mx.remote.test",
        "Diagnostic-Code": "smtp; 550 5.1.1 no such user",
    }
    assert dict(carol.items()) == {
        "Final-Recipient": "rfc822; carol@gone.test",
        "Action": "failed",
        "Status": "5.1.10",
        "Diagnostic-Code": "X-mailhost; 556 5.1.10 domain gone.test accepts no mail",
    }


def test_only_the_original_header_is_returned() -> None:
    headers = str(parts(dsn(FailedRecipient("a@b.test", "550 no")))[2].get_payload())
    assert "From: bob@example.com" in headers
    assert "Subject: caf" in headers
    assert "secret body" not in headers


def test_original_header_stops_at_the_blank_line_and_is_capped() -> None:
    assert original_header(b"A: 1\r\nB: 2\r\n\r\nbody") == b"A: 1\r\nB: 2\r\n"
    assert original_header(b"A: 1\n\nbody") == b"A: 1\n"
    assert original_header(b"A: 1\r\n") == b"A: 1\r\n"
    huge = b"X: " + b"y" * (2 * MAX_HEADER_BYTES) + b"\r\n\r\nbody"
    assert len(original_header(huge)) == MAX_HEADER_BYTES


@pytest.mark.parametrize(
    ("sender", "bounce"),
    [("", False), ("<>", False), ("  ", False), ("bob@example.com", True)],
)
def test_null_sender_is_never_bounced(sender: str, bounce: bool) -> None:
    assert should_bounce(sender) is bounce


@given(
    code=st.sampled_from(["421", "450", "451", "550", "552", "554"]),
    detail=st.tuples(st.integers(0, 999), st.integers(0, 999)),
    text=st.text(alphabet="abc xyz", max_size=20),
)
def test_status_code_comes_from_the_enhanced_code(
    code: str, detail: tuple[int, int], text: str
) -> None:
    enhanced = f"{code[0]}.{detail[0]}.{detail[1]}"
    assert status_code(f"{code} {enhanced} {text}") == enhanced
    assert status_code(f"{code} {text}") == ("4.0.0" if code.startswith("4") else "5.0.0")
