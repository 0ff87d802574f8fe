"""The MX reply table: exact lines for every refusal, and aiosmtpd's own replies rewritten."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.envelope import Reason, Refuse
from mailhost.smtp import replies
from mailhost.smtp.replies import AIOSMTPD, REFUSALS, Reply, ehlo_lines, render, translate

# RFC 3463 §2: class.subject.detail, and the class matches the reply's first digit.
REPLY_LINE = re.compile(r"(?P<code>[245]\d\d) (?P<class>[245])\.\d{1,3}\.\d{1,3} \S.*")
NAMED = [value for value in vars(replies).values() if isinstance(value, Reply)]


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        (Reason.UNKNOWN_USER, "550 5.1.1 <bob@example.com>: no such user here"),
        (Reason.NO_MAILBOX, "550 5.1.1 <bob@example.com>: no mailbox here"),
        (Reason.RELAY_DENIED, "554 5.7.1 <bob@example.com>: relay access denied"),
        (Reason.TENANT_DISABLED, "450 4.2.1 <bob@example.com>: mailbox temporarily unavailable"),
        (Reason.MAILBOX_FULL, "552 5.2.2 <bob@example.com>: mailbox full"),
        (
            Reason.MAILBOX_WOULD_OVERFLOW,
            "552 5.2.2 <bob@example.com>: message would exceed the mailbox quota",
        ),
        (Reason.MESSAGE_TOO_BIG, "552 5.3.4 message size exceeds fixed limit"),
    ],
)
def test_each_refusal_renders_its_exact_line(reason: Reason, line: str) -> None:
    assert render(Refuse(reason, "bob@example.com")) == line


def test_every_reason_has_a_row() -> None:
    assert set(REFUSALS) == set(Reason)


@pytest.mark.parametrize("reply", [*REFUSALS.values(), *NAMED, *(r.reply for r in AIOSMTPD)])
def test_every_row_cites_its_rfc_and_has_a_matching_enhanced_code(reply: Reply) -> None:
    assert reply.rfc.startswith("RFC ")
    rendered = reply.render(address="a@b.test", queue_id="Q", ref="r", hostname="mx.test")
    match = REPLY_LINE.fullmatch(rendered)
    assert match is not None, rendered
    assert match["code"][0] == match["class"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (replies.QUEUED.render(queue_id="0A1B"), "250 2.0.0 Ok: queued as 0A1B"),
        (replies.BAD_SENDER_SYNTAX.render(), "501 5.1.7 bad sender address syntax"),
        (replies.BAD_RECIPIENT_SYNTAX.render(), "501 5.1.3 bad recipient address syntax"),
        (replies.TOO_MANY_RECIPIENTS.render(), "452 4.5.3 too many recipients"),
        (replies.NO_VALID_RECIPIENTS.render(), "554 5.5.1 no valid recipients"),
        (replies.BARE_LINE_ENDING.render(), "550 5.5.2 bare CR or LF in message not allowed"),
        (
            replies.TEMPORARY_FAILURE.render(ref="5eed"),
            "451 4.3.0 temporary failure, try again later (ref 5eed)",
        ),
    ],
)
def test_transaction_replies_are_exact(line: str, expected: str) -> None:
    assert line == expected


@given(st.text())
def test_directory_text_can_never_break_the_reply_line(detail: str) -> None:
    line = render(Refuse(Reason.UNKNOWN_USER, detail))
    assert line.startswith("550 5.1.1 <")
    assert line.isascii() and line.isprintable()
    assert len(line) <= 510  # RFC 5321 §4.5.3.1.5: 512 with CRLF


@pytest.mark.parametrize(
    ("said", "verb", "ours"),
    [
        ("553 5.1.3 Error: malformed address", "MAIL", "501 5.1.7 bad sender address syntax"),
        ("553 5.1.3 Error: malformed address", "RCPT", "501 5.1.3 bad recipient address syntax"),
        (
            "552 Error: message size exceeds fixed maximum message size",
            "MAIL",
            "552 5.3.4 message size exceeds fixed limit",
        ),
        ("503 Error: need RCPT command", None, "554 5.5.1 no valid recipients"),
        ("503 Error: need MAIL command", "RCPT", "503 5.5.1 Error: need MAIL command"),
        (
            "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
            "MAIL",
            "501 5.5.4 Syntax: MAIL FROM:<address> [SP <mail-parameters>]",
        ),
        ("500 Command line too long", None, "500 5.5.2 Error: command line too long"),
        ("220 Ready to start TLS", None, "220 2.0.0 Ready to start TLS"),
    ],
)
def test_aiosmtpd_replies_are_rewritten(said: str, verb: str | None, ours: str) -> None:
    assert translate(said, verb) == ours


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_any_unknown_verb_gets_500_5_5_1_without_echoing_it(verb: str) -> None:
    assert translate(f'500 Error: command "{verb}" not recognized', None) == (
        "500 5.5.1 Error: command not recognized"
    )


@given(st.sampled_from([r.render(address="a@b.test") for r in REFUSALS.values()]), st.text())
def test_our_own_replies_pass_through_unchanged(line: str, verb: str) -> None:
    assert translate(line, verb) == line


def test_malformed_address_outside_mail_and_rcpt_is_left_alone() -> None:
    assert translate("553 5.1.3 Error: malformed address", None) == (
        "553 5.1.3 Error: malformed address"
    )


def test_ehlo_lines_end_with_a_space_line() -> None:
    assert ehlo_lines("mx.test", ["PIPELINING", "SIZE 10"]) == [
        "250-mx.test",
        "250-PIPELINING",
        "250 SIZE 10",
    ]
    assert ehlo_lines("mx.test", []) == ["250 mx.test"]
