"""Aliases, SRS and catch-all, end to end: SMTP to the MX of `mailhost serve`, Maildirs
for hosted targets, and the sink (remote.test, [delivery] routes) for the others."""

from __future__ import annotations

import smtplib
import subprocess
import sys

import pytest

from tests.system.conftest import Server, ThreadSink

MAIL_HOST = "mail.example.test"
MESSAGE = (
    b"From: Someone <someone@remote.test>\r\n"
    b"To: team@example.test\r\n"
    b"Subject: to the team\r\n"
    b"Message-ID: <team-1@remote.test>\r\n"
    b"\r\n"
    b"Hello team,\r\n"
)
BOUNCE = b"From: MAILER-DAEMON@remote.test\r\nSubject: Undelivered Mail\r\n\r\nIt bounced.\r\n"


def run(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(server.data_dir), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def mailhost(server: Server, *args: str) -> str:
    done = run(server, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def send(server: Server, sender: str, rcpt: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp._host = MAIL_HOST  # smtplib checks the certificate against the connect() host
        smtp.starttls(context=server.tls())
        smtp.ehlo("remote.test")
        smtp.sendmail(sender, [rcpt], data)


def delivered(server: Server, address: str) -> list[bytes]:
    new = server.maildir(address) / "new"
    return [path.read_bytes() for path in sorted(new.iterdir())] if new.exists() else []


def test_alias_mail_reaches_every_mailbox_and_the_sink_with_an_srs_sender_and_bounces_back(
    mail_out_server: Server, mail_sink: ThreadSink
) -> None:
    server = mail_out_server
    mailhost(server, "alias", "add", "info@example.test", "alice@example.test")
    mailhost(
        server,
        "alias",
        "add",
        "team@example.test",
        "info@example.test",
        "bob@example.test",
        "alice@example.test",
        "friend@remote.test",
    )
    send(server, "someone@remote.test", "team@example.test", MESSAGE)
    for address in ("alice@example.test", "bob@example.test"):
        [copy] = delivered(server, address)  # alice once, though reached twice
        assert copy.endswith(MESSAGE)
        assert b"Return-Path: <someone@remote.test>\r\n" in copy
    [(sender, recipients, data)] = mail_sink.wait_for(1)
    assert recipients == ["friend@remote.test"]
    assert sender.startswith("SRS0=") and sender.endswith("=remote.test=someone@example.test")
    assert data.endswith(MESSAGE)  # only trace and signature header fields in front
    # The operator can tie the forwarded copy's own queue id to the message's.
    [accepted] = [line for line in server.output if " accepted " in line and "team@" in line]
    message_id = accepted.split(" id=", 1)[1].split()[0]
    [forwarded] = [line for line in server.output if " forwarded " in line]
    assert f"id={message_id} queue_id=" in forwarded
    assert f'sender="{sender}" to=friend@remote.test' in forwarded  # "=" in it: quoted

    # The friend's server bounces it: the bounce goes back to the original sender.
    send(server, "", sender, BOUNCE)
    [_, (bounce_sender, bounce_rcpts, bounced)] = mail_sink.wait_for(2)
    assert (bounce_sender, bounce_rcpts) == ("<>", ["someone@remote.test"])  # aiosmtpd: <>
    assert bounced.endswith(BOUNCE)

    # An altered hash is a forgery, refused at RCPT and never relayed.
    tag, hash_, rest = sender.split("=", 2)
    forged = f"{tag}={'AAAA' if hash_ != 'AAAA' else 'BBBB'}={rest}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        send(server, "", forged, BOUNCE)
    code, text = caught.value.recipients[forged]
    assert (code, text.decode()) == (
        550,
        f"5.7.1 <{forged}>: forged SRS address, not made by this server",
    )
    assert len(mail_sink.wait_for(3, timeout=1)) == 2


def test_a_loop_is_refused_when_made(mail_out_server: Server) -> None:
    server = mail_out_server
    mailhost(server, "alias", "add", "ping@example.test", "alice@example.test")
    mailhost(server, "alias", "add", "pong@example.test", "ping@example.test")
    done = run(server, "alias", "add", "ping@example.test", "pong@example.test")
    assert done.returncode == 1
    assert "an alias cannot lead back to itself" in done.stderr


def test_catch_all_on_and_off(mail_out_server: Server) -> None:
    server = mail_out_server
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(server, "someone@remote.test", "nobody@example.test", MESSAGE)
    mailhost(server, "catchall", "set", "example.test", "bob@example.test")
    send(server, "someone@remote.test", "nobody@example.test", MESSAGE)
    [copy] = delivered(server, "bob@example.test")
    assert copy.endswith(MESSAGE)
    assert b"Delivered-To: bob@example.test\r\n" in copy
    mailhost(server, "catchall", "clear", "example.test")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        send(server, "someone@remote.test", "nobody@example.test", MESSAGE)
    code, text = caught.value.recipients["nobody@example.test"]
    assert (code, text.decode()) == (550, "5.1.1 <nobody@example.test>: no such user here")
