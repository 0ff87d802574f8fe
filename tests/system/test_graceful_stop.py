"""SIGTERM stops `mailhost serve` gracefully: a message in DATA is finished and kept,
idle sessions are told 421 4.3.2, no new connection is accepted, and the process exits 0."""

from __future__ import annotations

import re
import signal
import socket
import subprocess

import pytest

from tests.system.conftest import HOSTNAME, Server

SHUTTING_DOWN = f"421 4.3.2 {HOSTNAME} Service shutting down"
MESSAGE = (
    b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: last one in\r\n\r\n"
    + b"sent while the server stops\r\n" * 50
)


class Client:
    """A blocking SMTP client that reads every reply line as the server sends it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def reply(self) -> str:
        while True:
            line = self.file.readline().decode("ascii").removesuffix("\r\n")
            if len(line) < 4 or line[3] != "-":
                return line

    def say(self, command: str, expect: str) -> str:
        self.sock.sendall(command.encode("ascii") + b"\r\n")
        line = self.reply()
        assert line.startswith(expect), f"{command!r}: expected {expect!r}, got {line!r}"
        return line

    def rest(self) -> list[str]:
        """Every line until the server closes the connection."""
        return self.file.read().decode("ascii").splitlines()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_sigterm_finishes_the_message_in_data_and_ends_idle_sessions(server: Server) -> None:
    assert server.process is not None
    port = server.ports["MX (SMTP)"]
    sending, idle = Client(port), Client(port)
    try:
        sending.say("EHLO remote.test", "250 ")
        sending.say("MAIL FROM:<a@remote.test>", "250 2.1.0")
        sending.say("RCPT TO:<bob@example.test>", "250 2.1.5")
        sending.say("DATA", "354 ")
        sending.sock.sendall(MESSAGE[:100])  # the message is under way
        idle.say("EHLO remote.test", "250 ")

        server.process.send_signal(signal.SIGTERM)
        assert idle.rest() == [SHUTTING_DOWN]
        with pytest.raises(ConnectionRefusedError):  # the listening socket is closed
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        sending.sock.sendall(MESSAGE[100:] + b".\r\n")
        [queued, goodbye] = sending.rest()
        assert re.fullmatch(r"250 2\.0\.0 Ok: queued as \S+", queued), queued
        assert goodbye == SHUTTING_DOWN
    finally:
        sending.close()
        idle.close()
    try:
        code = server.process.wait(60)  # [server] stop_grace_seconds is 30; nothing is busy
    except subprocess.TimeoutExpired:
        pytest.fail("serve did not exit after SIGTERM:\n" + server.stop())
    assert code == 0, server.stop()
    [stored] = (server.maildir("bob@example.test") / "new").iterdir()
    assert stored.read_bytes().endswith(MESSAGE)
