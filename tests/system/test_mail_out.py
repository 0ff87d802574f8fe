"""Mail out, end to end: curl, swaks and smtplib submit to `mailhost serve`, the worker relays.

`remote.test` is routed to an aiosmtpd sink on 127.0.0.1 ([delivery] routes). In the
demo data alice@example.test holds an SMTP account and bob@example.test does not.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import dkim

from tests.system.conftest import PASSWORD, Server, ThreadSink

MAIL_HOST = "mail.example.test"
MAILHOST = [sys.executable, "-m", "mailhost"]
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Zed <zed@remote.test>\r\n"
    b"Subject: out through submission\r\n"
    b"Message-ID: <out-1@example.test>\r\n"
    b"\r\n"
    b"Hello Zed,\r\n"
    b".a line that starts with a dot\r\n"
    b"caf\xc3\xa9 in 8 bits\r\n"
)


def published_dkim(server: Server) -> dict[bytes, bytes]:
    """The TXT records `mailhost domain dkim` tells the operator to publish, as DNS would serve."""
    printed = subprocess.run(
        [*MAILHOST, "--data-dir", str(server.data_dir), "domain", "dkim", "example.test"],
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    records: dict[bytes, bytes] = {}
    for line in printed.splitlines():
        if " IN TXT " in line:
            name = line.split()[0]
            records[name.encode()] = "".join(re.findall(r'"([^"]*)"', line)).encode()
    assert len(records) >= 1, printed
    return records


def dkim_valid(message: bytes, records: dict[bytes, bytes]) -> bool:
    return bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: records.get(name)))


def curl_submit(
    server: Server, tmp_path: Path, user: str, rcpt: str
) -> subprocess.CompletedProcess[str]:
    port = server.ports["Submission"]
    upload = tmp_path / "message.eml"
    upload.write_bytes(MESSAGE)
    return subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--ssl-reqd", "--cacert", str(server.ca_file)),
            *("--resolve", f"{MAIL_HOST}:{port}:127.0.0.1", "--user", f"{user}:{PASSWORD}"),
            *("--mail-from", user, "--mail-rcpt", rcpt, "--upload-file", str(upload)),
            f"smtp://{MAIL_HOST}:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def swaks(server: Server, user: str, *, implicit: bool) -> subprocess.CompletedProcess[str]:
    """swaks over 465-style implicit TLS (--tls-on-connect) or 587-style STARTTLS (--tls)."""
    port = server.ports["Submissions" if implicit else "Submission"]
    return subprocess.run(
        [
            *("swaks", "--server", f"127.0.0.1:{port}"),
            "--tls-on-connect" if implicit else "--tls",
            *("--tls-ca-path", str(server.ca_file), "--tls-verify", "--tls-sni", MAIL_HOST),
            *("--auth", "PLAIN", "--auth-user", user, "--auth-password", PASSWORD),
            *("--from", user, "--to", "zed@remote.test", "--h-Subject", "swaks"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_curl_submits_with_starttls_and_the_sink_gets_it_intact_and_dkim_signed(
    mail_out_server: Server, mail_sink: ThreadSink, tmp_path: Path
) -> None:
    done = curl_submit(mail_out_server, tmp_path, "alice@example.test", "zed@remote.test")
    assert done.returncode == 0, done.stderr
    [(sender, recipients, data)] = mail_sink.wait_for(1)
    assert (sender, recipients) == ("alice@example.test", ["zed@remote.test"])
    assert data.endswith(MESSAGE)
    assert b" with ESMTPSA id " in data.replace(b"\r\n\t", b" ")
    assert dkim_valid(data, published_dkim(mail_out_server))


def test_curl_user_without_smtp_account_is_refused(
    mail_out_server: Server, mail_sink: ThreadSink, tmp_path: Path
) -> None:
    done = curl_submit(mail_out_server, tmp_path, "bob@example.test", "zed@remote.test")
    assert done.returncode != 0
    assert "550" in done.stderr  # curl: "RCPT failed: 550"


def test_swaks_relays_for_alice_and_refuses_bob(
    mail_out_server: Server, mail_sink: ThreadSink
) -> None:
    sent = swaks(mail_out_server, "alice@example.test", implicit=True)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "<~  235 2.7.0 Authentication successful" in sent.stdout
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as \S+", sent.stdout)
    [(_, _, data)] = mail_sink.wait_for(1)
    assert b"Subject: swaks" in data
    refused = swaks(mail_out_server, "bob@example.test", implicit=False)
    assert refused.returncode != 0
    assert "<~* 550 5.7.1 bob@example.test has no SMTP account: relaying refused" in refused.stdout
    assert len(mail_sink.wait_for(2, timeout=1)) == 1


def test_smtplib_auth_before_starttls_bad_passwords_and_no_lockout(
    mail_out_server: Server,
) -> None:
    port = mail_out_server.ports["Submission"]
    token = base64.b64encode(f"\0alice@example.test\0{PASSWORD}".encode()).decode()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features and "starttls" in client.esmtp_features
        assert client.docmd("AUTH", f"PLAIN {token}") == (
            530,
            b"5.7.0 Must issue a STARTTLS command first",
        )
        assert client.docmd("MAIL", "FROM:<alice@example.test>")[0] == 530
        client._host = MAIL_HOST  # type: ignore[attr-defined]  # smtplib checks this name
        client.starttls(context=mail_out_server.tls())
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        wrong = base64.b64encode(b"\0alice@example.test\0not the password at all").decode()
        for _ in range(6):  # each failure slows this address down; none locks alice out
            assert client.docmd("AUTH", f"PLAIN {wrong}") == (
                535,
                b"5.7.8 Authentication credentials invalid",
            )
        assert client.docmd("AUTH", f"PLAIN {token}") == (235, b"2.7.0 Authentication successful")


def test_implicit_tls_port_speaks_tls_first(mail_out_server: Server) -> None:
    port = mail_out_server.ports["Submissions"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"EHLO client.test\r\n")  # plaintext on a TLS port gets no SMTP answer
        raw.settimeout(5)
        try:
            answer = raw.recv(100)
        except (TimeoutError, ConnectionResetError):
            answer = b""
        assert not answer.startswith(b"220")
    context = mail_out_server.tls()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=MAIL_HOST) as tls,
    ):
        assert tls.recv(100).startswith(b"220 ")
        assert isinstance(tls, ssl.SSLSocket) and tls.version() in ("TLSv1.2", "TLSv1.3")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_queue_survives_sigkill_between_250_and_delivery(
    mail_out_server: Server, mail_sink: ThreadSink
) -> None:
    sink_route = mail_out_server.env["MAILHOST_DELIVERY_ROUTES"]
    # First the destination is down, so the message waits in the queue after its 250.
    mail_out_server.kill()
    mail_out_server.env["MAILHOST_DELIVERY_ROUTES"] = f"remote.test=127.0.0.1:{_closed_port()}"
    mail_out_server.start()
    with smtplib.SMTP("127.0.0.1", mail_out_server.ports["Submission"], timeout=30) as smtp:
        smtp._host = MAIL_HOST  # smtplib checks the certificate against the connect() host
        smtp.starttls(context=mail_out_server.tls())
        smtp.login("alice@example.test", PASSWORD)
        refused = smtp.sendmail("alice@example.test", ["zed@remote.test"], MESSAGE)
    assert refused == {}
    mail_out_server.kill()
    # After the crash the destination is back; the queued message is still there.
    mail_out_server.env["MAILHOST_DELIVERY_ROUTES"] = sink_route
    mail_out_server.start()
    cli = [*MAILHOST, "--data-dir", str(mail_out_server.data_dir)]
    subprocess.run(
        [*cli, "queue", "retry", "--all"],
        env=mail_out_server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    [(sender, rcpts, content)] = mail_sink.wait_for(1)
    assert (sender, rcpts) == ("alice@example.test", ["zed@remote.test"])
    assert content.endswith(MESSAGE.split(b"\r\n\r\n", 1)[1])
