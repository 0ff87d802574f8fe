"""SIGKILL in the middle of a stream of deliveries loses nothing that got a 250."""

from __future__ import annotations

import smtplib
import threading
import time

from tests.system.conftest import Server
from tests.system.test_mail_in import body_of


def _message(n: int) -> bytes:
    return (
        f"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: n{n}\r\n\r\n".encode()
        + f"payload {n}\r\n".encode() * 200
    )


def _sender(server: Server, first: int, acked: list[int], stop: threading.Event) -> None:
    n = first
    try:
        with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=10) as smtp:
            smtp.ehlo("remote.test")
            while not stop.is_set():
                smtp.sendmail("a@remote.test", ["bob@example.test"], _message(n))
                acked.append(n)  # only after the 250 reply to the final dot
                n += 1
    except (smtplib.SMTPException, OSError):
        return  # the server died under us: what was not acknowledged may be lost


def test_every_acknowledged_message_survives_sigkill(server: Server) -> None:
    acked: list[int] = []
    stop = threading.Event()
    senders = [
        threading.Thread(target=_sender, args=(server, k * 100_000, acked, stop)) for k in range(3)
    ]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for thread in senders:
        thread.join(15)
    assert len(acked) >= 30
    new = server.maildir("bob@example.test") / "new"
    stored = {}
    for path in new.iterdir():
        body = body_of(path.read_bytes())
        subject = body.split(b"Subject: n", 1)[1].split(b"\r\n", 1)[0]
        n = int(subject)
        assert body == _message(n), f"{path.name} is not intact"
        stored[n] = path.name
    missing = sorted(set(acked) - set(stored))
    assert missing == [], f"acknowledged but lost: {missing}"
    # A restart finds the mailbox consistent: every stored message is listed.
    server.start()
    from tests.system.test_mail_in import pop3s

    client = pop3s(server)
    assert client.stat()[0] == len(stored)
    client.quit()
