"""Mail in, end to end: SMTP to the MX, Maildir, POP3 out, against `mailhost serve`."""

from __future__ import annotations

import json
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import PASSWORD, PREFILLED, Pop3sClient, Server, stls

MAIL_HOST = "mail.example.test"


FINAL_TRACE = re.compile(rb"Return-Path: <(?P<sender>[^>\r\n]*)>\r\nDelivered-To: (?P<to>\S+)\r\n")


def body_of(message: bytes) -> bytes:
    """The message as sent: the final delivery's Return-Path: and Delivered-To: and our
    Received header are the only things added in front."""
    final = FINAL_TRACE.match(message)
    assert final is not None, message[:200]
    message = message[final.end() :]
    assert message.startswith(b"Received: from ")
    end = message.index(b"\r\n")
    # The Received header may be folded; skip its continuation lines.
    while message[end + 2 : end + 3] in (b" ", b"\t"):
        end = message.index(b"\r\n", end + 2)
    return message[end + 2 :]


def send(server: Server, rcpt: str, data: bytes, sender: str = "someone@remote.test") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp._host = MAIL_HOST  # smtplib checks the certificate against the connect() host
        smtp.starttls(context=server.tls())
        smtp.ehlo("remote.test")
        smtp.sendmail(sender, [rcpt], data)


def pop3s(server: Server, user: str = "bob@example.test") -> poplib.POP3_SSL:
    client = Pop3sClient(server.ports["POP3S"], server.tls(), MAIL_HOST)
    client.user(user)
    client.pass_(PASSWORD)
    return client


def eventually_open(server: Server) -> poplib.POP3_SSL:
    """The server frees a dropped session's mailbox once it notices the drop."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return pop3s(server)
        except poplib.error_proto as exc:
            if b"IN-USE" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def retrieve_all(client: poplib.POP3) -> list[bytes]:
    count, _ = client.stat()
    return [b"\r\n".join(client.retr(i + 1)[1]) + b"\r\n" for i in range(count)]


def sample(subject: str, payload: bytes) -> bytes:
    return (
        b"From: someone@remote.test\r\nTo: bob@example.test\r\nSubject: "
        + subject.encode()
        + b"\r\n\r\n"
        + payload
    )


def test_round_trip_is_byte_exact_with_dots_and_8bit(server: Server) -> None:
    messages = [
        sample("dots", b".starts with a dot\r\n..two dots\r\n.\r\nend\r\n"),
        sample("8bit", "grüße, ½ ✓\r\n".encode()),
        sample("big", (b"x" * 998 + b"\r\n") * 10_500),  # about 10 MB
    ]
    for data in messages:
        send(server, "bob@example.test", data)
    client = pop3s(server)
    try:
        got = retrieve_all(client)
    finally:
        client.quit()
    assert [body_of(m) for m in got] == messages


def test_uidl_is_stable_and_deletes_apply_only_at_quit(server: Server) -> None:
    for n in range(3):
        send(server, "bob@example.test", sample(f"m{n}", b"hello\r\n"))
    first = pop3s(server)
    uids = first.uidl()[1]
    first.dele(1)
    first.sock.shutdown(socket.SHUT_RDWR)  # dropped connection: no UPDATE state, nothing deleted
    first.file.close()
    first.sock.close()
    second = eventually_open(server)
    assert second.uidl()[1] == uids
    second.dele(2)
    second.quit()
    third = pop3s(server)
    remaining = [line.split()[1] for line in third.uidl()[1]]
    third.quit()
    assert remaining == [uids[0].split()[1], uids[2].split()[1]]


def test_second_session_gets_in_use(server: Server) -> None:
    first = pop3s(server)
    client = Pop3sClient(server.ports["POP3S"], server.tls(), MAIL_HOST)
    client.user("bob@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        client.pass_(PASSWORD)
    client.quit()
    first.quit()


def test_plaintext_login_is_refused_until_stls(server: Server) -> None:
    client = poplib.POP3("127.0.0.1", server.ports["POP3"], timeout=30)
    with pytest.raises(poplib.error_proto, match=r"STLS"):
        client.user("bob@example.test")
    stls(client, server.tls(), MAIL_HOST)
    client.user("bob@example.test")
    client.pass_(PASSWORD)
    assert client.stat()[0] == 0
    client.quit()


def test_stls_discards_pipelined_plaintext(server: Server) -> None:
    raw = socket.create_connection(("127.0.0.1", server.ports["POP3"]), timeout=30)
    assert raw.recv(512).startswith(b"+OK")
    raw.sendall(b"STLS\r\nUSER bob@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert raw.recv(512).startswith(b"+OK")
    tls = server.tls().wrap_socket(raw, server_hostname=MAIL_HOST)
    tls.sendall(b"STAT\r\n")
    reply = tls.recv(512)
    assert reply.startswith(b"-ERR"), reply  # still in AUTHORIZATION: the injection was dropped
    tls.sendall(b"QUIT\r\n")
    tls.close()


def test_certificate_is_chosen_by_sni(server: Server) -> None:
    address = ("127.0.0.1", server.ports["POP3S"])
    for name in (MAIL_HOST, "mx.hosting.test"):
        with (
            socket.create_connection(address, timeout=30) as raw,
            server.tls().wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.recv(512).startswith(b"+OK")
    with (
        socket.create_connection(address, timeout=30) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        server.tls().wrap_socket(raw, server_hostname="mail.other.test")


@pytest.mark.parametrize(
    ("rcpt", "code", "text"),
    [
        ("nobody@example.test", 550, b"5.1.1"),
        ("someone@elsewhere.test", 554, b"5.7.1"),
        ("nobox@example.test", 550, b"5.1.1"),
    ],
)
def test_refused_recipients(server: Server, rcpt: str, code: int, text: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp.mail("someone@remote.test")
        reply_code, reply = smtp.rcpt(rcpt)
    assert (reply_code, reply[:5]) == (code, text)


def test_size_and_quota_refusals(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        assert smtp.mail("a@remote.test", ["SIZE=20000000"])[0] == 552
        smtp.rset()
        smtp.mail("a@remote.test")
        assert smtp.rcpt("tiny@example.test")[0] == 250
        code, reply = smtp.data(sample("too big for tiny", (b"y" * 998 + b"\r\n") * 5))
        assert (code, reply[:5]) == (552, b"5.2.2")
    send(server, "tiny@example.test", sample("fits", (b"z" * 998 + b"\r\n") * 2))
    assert len(list((server.maildir("tiny@example.test") / "new").iterdir())) == 1
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp.mail("a@remote.test")
        code, reply = smtp.rcpt("full@example.test")  # a mailbox already at its quota
        assert (code, reply[:5]) == (552, b"5.2.2")


def test_smuggling_with_bare_lf_is_refused(server: Server) -> None:
    raw = socket.create_connection(("127.0.0.1", server.ports["MX (SMTP)"]), timeout=30)
    stream = raw.makefile("rb")
    stream.readline()
    raw.sendall(b"EHLO remote.test\r\n")
    while stream.readline()[3:4] == b"-":
        pass
    raw.sendall(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert stream.readline().startswith(b"250")
    assert stream.readline().startswith(b"250")
    assert stream.readline().startswith(b"354")
    raw.sendall(
        b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@remote.test>\r\n"
        b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
    )
    reply = stream.readline()
    assert reply[:1] == b"5", reply
    raw.close()
    new = server.maildir("bob@example.test") / "new"
    assert not new.exists() or list(new.iterdir()) == []


def test_curl_sends_and_reads_over_pop3s(server: Server, tmp_path: Path) -> None:
    mail = tmp_path / "mail.txt"
    mail.write_bytes(sample("from curl", b"hello from curl\r\n"))
    port = server.ports["MX (SMTP)"]
    subprocess.run(
        [
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            str(server.ca_file),
            "--resolve",
            f"{MAIL_HOST}:{port}:127.0.0.1",
            f"smtp://{MAIL_HOST}:{port}",
            "--mail-from",
            "someone@remote.test",
            "--mail-rcpt",
            "bob@example.test",
            "--upload-file",
            str(mail),
        ],
        check=True,
        timeout=60,
    )
    pop = server.ports["POP3S"]
    listing = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(server.ca_file),
            "--resolve",
            f"{MAIL_HOST}:{pop}:127.0.0.1",
            "--user",
            f"bob@example.test:{PASSWORD}",
            f"pop3s://{MAIL_HOST}:{pop}/1",
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert body_of(listing.stdout) == mail.read_bytes()


def test_transfer_and_storage_are_accounted(server: Server) -> None:
    data = sample("count me", b"a" * 998 + b"\r\n")
    send(server, "bob@example.test", data)
    client = pop3s(server)
    [stored] = retrieve_all(client)
    client.quit()
    out = subprocess.run(
        [*server_cli(server), "usage", "--customer", "acme", "--json"],
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    [usage] = json.loads(out)
    assert usage["storage_bytes"] == PREFILLED + len(stored)
    # received into the mailbox, plus the RETR response sent to the client
    assert usage["transfer_bytes"] >= 2 * len(stored)


def server_cli(server: Server) -> list[str]:
    return [sys.executable, "-m", "mailhost", "--data-dir", str(server.data_dir)]


def test_curl_reads_over_pop3_with_stls(server: Server) -> None:
    send(server, "bob@example.test", sample("stls", b"read me over STLS\r\n"))
    port = server.ports["POP3"]
    listing = subprocess.run(
        [
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            str(server.ca_file),
            "--resolve",
            f"{MAIL_HOST}:{port}:127.0.0.1",
            "--user",
            f"bob@example.test:{PASSWORD}",
            f"pop3://{MAIL_HOST}:{port}/1",
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert body_of(listing.stdout).endswith(b"read me over STLS\r\n")


def _mailbox_json(server: Server) -> dict[str, int]:
    out = subprocess.run(
        [*server_cli(server), "mailbox", "list", "example.test", "--json"],
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return {row["address"]: row["used"] for row in json.loads(out)}


def _disk_usage(server: Server, address: str) -> int:
    root = server.maildir(address)
    return sum(p.stat().st_size for sub in ("new", "cur") for p in (root / sub).glob("*"))


def test_database_and_disk_agree_and_recount_repairs_drift(server: Server) -> None:
    for n in range(4):
        send(server, "bob@example.test", sample(f"u{n}", b"usage\r\n" * (n + 1)))
    client = pop3s(server)
    client.dele(2)
    client.dele(3)
    client.quit()
    disk = _disk_usage(server, "bob@example.test")
    assert _mailbox_json(server)["bob@example.test"] == disk > 0
    # Drift: a message removed behind mailhost's back (an operator's rm, a restore).
    victim = next((server.maildir("bob@example.test") / "new").iterdir())
    victim.unlink()
    assert _mailbox_json(server)["bob@example.test"] == disk
    out = subprocess.run(
        [*server_cli(server), "mailbox", "recount", "example.test", "--json"],
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    repaired = {row["address"]: row for row in json.loads(out)}["bob@example.test"]
    assert repaired["recorded"] == disk
    assert repaired["on_disk"] == _disk_usage(server, "bob@example.test")
    assert repaired["repaired"] is True
    assert _mailbox_json(server)["bob@example.test"] == _disk_usage(server, "bob@example.test")


def test_final_delivery_starts_with_return_path_and_delivered_to(server: Server) -> None:
    # RFC 5321 §4.4: the delivering server records the envelope sender, on the MX
    # and on submission alike; the null sender stays <>.
    send(server, "bob@example.test", sample("mx", b"hi\r\n"), sender="Someone@Remote.test")
    send(server, "bob@example.test", sample("bounce", b"hi\r\n"), sender="")
    with smtplib.SMTP("127.0.0.1", server.ports["Submission"], timeout=30) as smtp:
        smtp.ehlo("client.test")
        smtp._host = MAIL_HOST  # smtplib checks the certificate against the connect() host
        smtp.starttls(context=server.tls())
        smtp.login("alice@example.test", PASSWORD)
        own = sample("sub", b"hi\r\n").replace(b"someone@remote.test", b"alice@example.test")
        smtp.sendmail("alice@example.test", ["BOB@example.test"], own)
    client = pop3s(server)
    try:
        got = retrieve_all(client)
    finally:
        client.quit()
    traces = [FINAL_TRACE.match(m) for m in got]
    assert [(m.group("sender"), m.group("to")) for m in traces if m] == [
        (b"Someone@Remote.test", b"bob@example.test"),
        (b"", b"bob@example.test"),
        (b"alice@example.test", b"bob@example.test"),
    ]
    assert [m.count(b"Return-Path:") for m in got] == [1, 1, 1]


@pytest.mark.parametrize(
    ("rcpt", "data", "reply"),
    [
        ("full@example.test", b"Subject: x\r\n\r\nx\r\n", "552 5.2.2"),
        ("nobody@example.test", b"Subject: x\r\n\r\nx\r\n", "550 5.1.1"),
        ("nobox@example.test", b"Subject: x\r\n\r\nx\r\n", "550 5.1.1"),
        ("tiny@example.test", b"Subject: x\r\n\r\n" + (b"y" * 78 + b"\r\n") * 60, "552 5.2.2"),
    ],
    ids=["full", "unknown", "no-mailbox", "would-overflow"],
)
def test_the_same_refusal_gets_the_same_reply_on_mx_and_submission(
    server: Server, rcpt: str, data: bytes, reply: str
) -> None:
    """One pipeline: a hosted recipient is refused alike whoever sends."""
    answers: list[str] = []
    for port, login in ((server.ports["MX (SMTP)"], False), (server.ports["Submission"], True)):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("client.test")
            smtp._host = MAIL_HOST
            smtp.starttls(context=server.tls())
            smtp.ehlo("client.test")
            if login:
                smtp.login("alice@example.test", PASSWORD)
            assert smtp.mail("alice@example.test")[0] == 250
            code, text = smtp.rcpt(rcpt)
            if code == 250:
                code, text = smtp.data(data)
            answers.append(f"{code} {text.decode()}")
    assert answers[0].startswith(reply), answers
    assert answers[0] == answers[1]
