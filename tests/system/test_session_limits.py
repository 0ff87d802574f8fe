"""Harvesting and connection limits against a real `mailhost serve`, on the MX and submission.

Small limits from the environment (`MAILHOST_<LISTENER>_<KEY>`) so the dialogue is short;
tests/smtp/test_limits.py covers the rules themselves.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from tests.system.conftest import PASSWORD, Server

MAIL_HOST = "mail.example.test"
LISTENERS = ("MX", "SUBMISSION", "SUBMISSIONS")
LIMITS = {
    "SOFT_ERROR_LIMIT": "2",
    "HARD_ERROR_LIMIT": "4",
    "ERROR_SLEEP_SECONDS": "0.2",
    "MAX_CONNECTIONS_PER_CLIENT": "2",
}


@pytest.fixture
def limited(server: Server) -> Iterator[Server]:
    server.stop()
    for listener in LISTENERS:
        for key, value in LIMITS.items():
            server.env[f"MAILHOST_{listener}_{key}"] = value
    server.start()
    yield server


def connect(server: Server, listener: str) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", server.ports[listener], timeout=30)
    smtp.ehlo("guesser.test")
    if listener == "Submission":
        smtp._host = MAIL_HOST  # smtplib checks the certificate against the connect() host
        smtp.starttls(context=server.tls())
        smtp.ehlo("guesser.test")
        smtp.login("alice@example.test", PASSWORD)
    return smtp


@pytest.mark.parametrize("listener", ["MX (SMTP)", "Submission"])
def test_guessed_recipients_are_slowed_then_the_session_ends_with_421(
    limited: Server, listener: str
) -> None:
    smtp = connect(limited, listener)
    assert smtp.mail("alice@example.test")[0] == 250
    answers: list[tuple[int, float]] = []
    for n in range(4):
        started = time.monotonic()
        code, _ = smtp.rcpt(f"guess{n}@example.test")
        answers.append((code, time.monotonic() - started))
    assert [code for code, _ in answers] == [550, 550, 550, 550]
    # From the soft limit (the 2nd error) on, each reply waits error_sleep_seconds first.
    assert all(seconds >= 0.2 for _, seconds in answers[1:])
    code, text = smtp.getreply()  # said unasked, right after the 4th error
    assert (code, text.decode()) == (421, "4.7.0 mx.hosting.test Error: too many errors")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.noop()
    # The next session starts afresh, and the operator can see why the last one ended.
    fresh = connect(limited, listener)
    assert fresh.rcpt("bob@example.test")[0] == 503  # no MAIL yet: an error, but only one
    fresh.quit()
    assert any("disconnected client=127.0.0.1 errors=4" in line for line in limited.output)


@pytest.mark.parametrize("listener", ["MX (SMTP)", "Submission"])
def test_one_client_gets_at_most_its_share_of_connections(limited: Server, listener: str) -> None:
    port = limited.ports[listener]
    held = [smtplib.SMTP("127.0.0.1", port, timeout=30) for _ in range(2)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert refused.value.smtp_code == 421
        assert refused.value.smtp_error.decode().startswith(
            "4.7.0 mx.hosting.test Error: too many connections from 127.0.0.1"
        )
    finally:
        for smtp in held:
            smtp.quit()
    # Once one is gone, the client is welcome again.
    again = smtplib.SMTP("127.0.0.1", port, timeout=30)
    assert again.noop()[0] == 250
    again.quit()
