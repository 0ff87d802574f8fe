"""The operator's log: `mailhost serve` with `[log] format = "json"` writes one JSON object
per line on stderr, and a delivery line names the id the submission's 250 reply gave."""

from __future__ import annotations

import json
import re
import smtplib
import time

from tests.system.conftest import PASSWORD, Server, ThreadSink

MAIL_HOST = "mail.example.test"
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Zed <zed@remote.test>\r\n"
    b"Subject: logged\r\n"
    b"\r\n"
    b"Hello Zed.\r\n"
)


def submit(server: Server) -> str:
    """Send MESSAGE as alice through submission; returns the queue id of the 250 reply."""
    with smtplib.SMTP("127.0.0.1", server.ports["Submission"], timeout=30) as smtp:
        smtp._host = MAIL_HOST  # type: ignore[attr-defined]  # the certificate's name
        smtp.starttls(context=server.tls())
        smtp.login("alice@example.test", PASSWORD)
        smtp.mail("alice@example.test")
        assert smtp.rcpt("zed@remote.test")[0] == 250
        code, reply = smtp.data(MESSAGE)
    match = re.fullmatch(rb"2\.0\.0 Ok: queued as (\S+)", reply)
    assert code == 250 and match is not None, reply
    return match.group(1).decode()


def logged(server: Server, wanted: dict[str, object]) -> dict[str, object]:
    """The first JSON line of serve's output with all of `wanted`, waiting up to 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in list(server.output):
            entry = json.loads(line)
            if wanted.items() <= entry.items():
                assert isinstance(entry, dict)
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no line with {wanted} in:\n{''.join(server.output)}")


def test_json_log_has_a_delivery_line_with_the_queued_as_id(
    mail_out_server: Server, mail_sink: ThreadSink
) -> None:
    mail_out_server.stop()
    mail_out_server.env["MAILHOST_LOG_FORMAT"] = "json"
    mail_out_server.start()

    queue_id = submit(mail_out_server)
    [(_, recipients, _)] = mail_sink.wait_for(1)
    entry = logged(mail_out_server, {"event": "delivery", "id": queue_id})

    assert recipients == ["zed@remote.test"]
    assert entry["status"] == "sent"
    assert entry["to"] == "zed@remote.test"
    assert entry["relay"] == f"127.0.0.1:{mail_sink.port}"
    assert entry["attempt"] == 1
    assert str(entry["reply"]).startswith("250 2.0.0 accepted by sink")
    assert isinstance(entry["delay"], float) and entry["delay"] >= 0
    assert (entry["level"], entry["logger"]) == ("info", "mailhost.outbound")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["time"]))
    assert str(entry["message"]).startswith(f"delivery id={queue_id} to=zed@remote.test ")
    output = mail_out_server.stop()
    for line in output.splitlines():  # every line serve wrote after its banner is an object
        assert isinstance(json.loads(line), dict), line
