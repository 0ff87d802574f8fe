"""Every SMTP reply mailhost's MX and submission servers send: one row per reply, with its RFC.

Enhanced status codes (RFC 2034, RFC 3463) are on every 2xx/4xx/5xx reply except
the greeting and the answers to HELO/EHLO (RFC 2034 §4). aiosmtpd writes some
replies itself, without enhanced codes; `translate` rewrites those through the
`AIOSMTPD` table so clients see the same style everywhere.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailhost.model.envelope import Reason, Refuse

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
MAX_REPLY_LINE = 510
# Directory names and client input can reach reply texts; never let them break the
# line framing, and stay ASCII: RFC 6531 lets UTF-8 into a reply only for a client
# that sent SMTPUTF8, and one reply table for every client is simpler.
_UNSAFE = re.compile(r"[^\x20-\x7e]")


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply: code, RFC 3463 enhanced status code, text with {named} fields, source."""

    code: int
    status: str
    text: str
    rfc: str

    def render(self, **fields: str) -> str:
        if not fields:  # 250 Ok to MAIL and RCPT: the same line every message
            return _rendered(self)
        return self._line(fields)

    def _line(self, fields: dict[str, str]) -> str:
        # A field the caller does not supply renders empty: a reply must never fail to render.
        line = f"{self.code} {self.status} {self.text.format_map(_Fields(fields))}"
        return _UNSAFE.sub("?", line)[:MAX_REPLY_LINE]


@functools.lru_cache(maxsize=512)
def _rendered(reply: Reply) -> str:
    return reply._line({})


# Transaction replies the MX handler writes.
SENDER_OK = Reply(250, "2.1.0", "Ok", "RFC 5321 §4.1.1.2; RFC 3463 §3.2 X.1.0")
RECIPIENT_OK = Reply(250, "2.1.5", "Ok", "RFC 5321 §4.1.1.3; RFC 3463 §3.2 X.1.5")
QUEUED = Reply(250, "2.0.0", "Ok: queued as {queue_id}", "RFC 5321 §4.1.1.4, §6.1")
OK = Reply(250, "2.0.0", "Ok", "RFC 5321 §4.1.1.5 RSET, §4.1.1.9 NOOP")
BYE = Reply(221, "2.0.0", "Bye", "RFC 5321 §4.1.1.10")
CANNOT_VRFY = Reply(
    252,
    "2.0.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
    "RFC 5321 §3.5.3",
)
HELP = Reply(
    214,
    "2.0.0",
    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY; see RFC 5321",
    "RFC 5321 §4.1.1.8",
)
BAD_SENDER_SYNTAX = Reply(
    501, "5.1.7", "bad sender address syntax", "RFC 5321 §4.1.2; RFC 3463 §3.2 X.1.7"
)
BAD_RECIPIENT_SYNTAX = Reply(
    501, "5.1.3", "bad recipient address syntax", "RFC 5321 §4.1.2; RFC 3463 §3.2 X.1.3"
)
# A UTF-8 address (or U-label domain) in MAIL or RCPT without SMTPUTF8 in MAIL FROM.
NEEDS_SMTPUTF8 = Reply(
    553,
    "5.6.7",
    "non-ASCII address requires SMTPUTF8",
    "RFC 6531 §3.5; RFC 3463 X.6.7, registered by RFC 6531",
)
# RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted; §4.5.3.1.10: 452 beyond.
TOO_MANY_RECIPIENTS = Reply(
    452, "4.5.3", "too many recipients", "RFC 5321 §4.5.3.1.10; RFC 3463 §3.6 X.5.3"
)
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "no valid recipients", "RFC 5321 §3.3")
MESSAGE_TOO_BIG = Reply(
    552, "5.3.4", "message size exceeds fixed limit", "RFC 1870 §6.1; RFC 3463 §3.4 X.3.4"
)
# SMTP smuggling (CVE-2023-51764/51765/51766): CR and LF only as CRLF (RFC 5321 §2.3.8).
# The code is Postfix's (smtpd_forbid_bare_newline = reject: 550 5.5.2). Postfix then
# disconnects; we need not, since DATA ended only at a real CRLF.CRLF.
BARE_LINE_ENDING = Reply(
    550, "5.5.2", "bare CR or LF in message not allowed", "RFC 5321 §2.3.8; RFC 3463 §3.6 X.5.2"
)
TEMPORARY_FAILURE = Reply(
    451,
    "4.3.0",
    "temporary failure, try again later (ref {ref})",
    "RFC 5321 §4.2.2 451; RFC 3463 §3.4 X.3.0",
)
AUTH_NOT_OFFERED = Reply(
    502, "5.5.1", "AUTH is not offered here; use the submission port", "RFC 5321 §4.2.4; RFC 6409"
)
TLS_ALREADY_ACTIVE = Reply(
    503,
    "5.5.1",
    "TLS already active",
    "RFC 3207 §4.2 (TLS is negotiated once); RFC 8314 §3.3; RFC 3463 §3.6 X.5.1",
)
IDLE_TIMEOUT = Reply(
    421, "4.4.2", "{hostname} Error: timeout exceeded", "RFC 5321 §4.5.3.2; RFC 3463 §3.5 X.4.2"
)
# Session limits (smtp/admission.py, smtp/listeners.py); the texts are Postfix's. After
# a 421 the server closes the connection (RFC 5321 §3.8, §4.2.2 421).
TOO_MANY_ERRORS = Reply(
    421,
    "4.7.0",
    "{hostname} Error: too many errors",
    "RFC 5321 §3.8, §4.2.2 421; RFC 3463 §3.8 X.7.0",
)
TOO_MANY_CONNECTIONS = Reply(
    421,
    "4.7.0",
    "{hostname} Error: too many connections",
    "RFC 5321 §3.8, §4.2.2 421; RFC 3463 §3.8 X.7.0",
)
TOO_MANY_CONNECTIONS_FROM = Reply(
    421,
    "4.7.0",
    "{hostname} Error: too many connections from {client}",
    "RFC 5321 §3.8, §4.2.2 421; RFC 3463 §3.8 X.7.0",
)
SHUTTING_DOWN = Reply(
    421,
    "4.3.2",
    "{hostname} Service shutting down",
    "RFC 5321 §3.8, §4.2.2 421; RFC 3463 §3.4 X.3.2",
)
COMMAND_LINE_TOO_LONG = Reply(
    500, "5.5.2", "Error: command line too long", "RFC 5321 §4.5.3.1.4, §4.5.3.1.10"
)
DATA_LINE_TOO_LONG = Reply(
    500,
    "5.6.0",
    "message line longer than 998 octets",
    "RFC 5321 §4.5.3.1.6, §4.5.3.1.10; RFC 3463 §3.7 X.6.0",
)

# Recipient and message refusals of services/inbound_policy.py.
REFUSALS: Mapping[Reason, Reply] = {
    Reason.UNKNOWN_USER: Reply(
        550, "5.1.1", "<{address}>: no such user here", "RFC 5321 §4.2.2 550; RFC 3463 §3.2 X.1.1"
    ),
    Reason.NO_MAILBOX: Reply(
        550, "5.1.1", "<{address}>: no mailbox here", "RFC 5321 §4.2.2 550; RFC 3463 §3.2 X.1.1"
    ),
    # RFC 5321 §3.6.2: the MX relays for nobody; it is never an open relay.
    Reason.RELAY_DENIED: Reply(
        554, "5.7.1", "<{address}>: relay access denied", "RFC 5321 §3.6.2; RFC 3463 §3.8 X.7.1"
    ),
    # The recipient's domain or customer is disabled: the sender keeps the mail and
    # retries, and nobody outside learns why (a suspension is the tenant's business).
    Reason.TENANT_DISABLED: Reply(
        450,
        "4.2.1",
        "<{address}>: mailbox temporarily unavailable",
        "RFC 5321 §4.2.2 450; RFC 3463 §3.3 X.2.1",
    ),
    # A relayed postmaster@/abuse@ of a second tenant in one message: the sender sends it
    # again for this recipient in its own transaction, as for any recipient limit.
    Reason.ANOTHER_OWNER: Reply(
        452,
        "4.5.3",
        "<{address}>: too many recipients, send this one again separately",
        "RFC 5321 §4.5.3.1.10; RFC 3463 §3.6 X.5.3",
    ),
    # RFC 5321 §4.5.3.1.10: clients SHOULD treat 552 at RCPT as a temporary failure (452),
    # so senders retry a full mailbox; the product asks for 552, RFC 3463 §3.3 X.2.2.
    Reason.MAILBOX_FULL: Reply(
        552, "5.2.2", "<{address}>: mailbox full", "RFC 5321 §4.5.3.1.10; RFC 3463 §3.3 X.2.2"
    ),
    Reason.MAILBOX_WOULD_OVERFLOW: Reply(
        552,
        "5.2.2",
        "<{address}>: message would exceed the mailbox quota",
        "RFC 5321 §4.2.2 552; RFC 3463 §3.3 X.2.2",
    ),
    Reason.MESSAGE_TOO_BIG: MESSAGE_TOO_BIG,
    # An alias whose targets lead back to it (or chain too deep): refused at RCPT, so
    # the message never circles through the queue.
    Reason.ALIAS_LOOP: Reply(
        554,
        "5.4.6",
        "<{address}>: alias loop or alias chain too long",
        "RFC 5321 §6.3; RFC 3463 §3.5 X.4.6",
    ),
    # Bounce addresses of forwarded mail (model/srs.py): only those this server made, and
    # only while they are young enough, lead back to a sender.
    Reason.SRS_FORGED: Reply(
        550,
        "5.7.1",
        "<{address}>: forged SRS address, not made by this server",
        "RFC 5321 §4.2.2 550; RFC 3463 §3.8 X.7.1",
    ),
    Reason.SRS_EXPIRED: Reply(
        550,
        "5.1.1",
        "<{address}>: expired SRS address, the forwarded mail is too old to bounce",
        "RFC 5321 §4.2.2 550; RFC 3463 §3.2 X.1.1",
    ),
    Reason.SRS_MALFORMED: Reply(
        550,
        "5.1.1",
        "<{address}>: malformed SRS address",
        "RFC 5321 §4.2.2 550; RFC 3463 §3.2 X.1.1",
    ),
    # Submission: the seed's rule, the SMTP account decides (services/submission_policy.py).
    # `address` is the authenticated user; `limit` the limit, sender or plan concerned.
    Reason.NO_SMTP_ACCOUNT: Reply(
        550,
        "5.7.1",
        "{address} has no SMTP account: relaying refused",
        "RFC 6409 §4.3, §6.1; RFC 3463 §3.8 X.7.1",
    ),
    Reason.RELAY_NOT_PERMITTED: Reply(
        550,
        "5.7.1",
        "{address}'s SMTP account does not allow relaying: relaying refused",
        "RFC 6409 §6.1; RFC 3463 §3.8 X.7.1",
    ),
    Reason.SENDER_NOT_ALLOWED: Reply(
        553,
        "5.7.1",
        "sender <{limit}> not allowed for {address}",
        "RFC 5321 §4.2.2 553; RFC 6409 §6.1; RFC 3463 §3.8 X.7.1",
    ),
    Reason.HOURLY_LIMIT: Reply(
        451,
        "4.7.1",
        "hourly limit of {limit} messages reached for {address}, try later",
        "RFC 5321 §4.2.2 451; RFC 3463 §3.8 X.7.1",
    ),
    Reason.RECIPIENT_LIMIT: Reply(
        452,
        "4.5.3",
        "too many recipients: {address} may send to {limit} per message",
        "RFC 5321 §4.5.3.1.10; RFC 3463 §3.6 X.5.3",
    ),
    Reason.ACCOUNT_SIZE_LIMIT: Reply(
        552,
        "5.3.4",
        "message exceeds {address}'s limit of {limit}",
        "RFC 1870 §6.1; RFC 3463 §3.4 X.3.4",
    ),
    Reason.TRANSFER_LIMIT: Reply(
        451,
        "4.7.1",
        "monthly data transfer of plan {limit} used up: relaying refused, try later",
        "RFC 5321 §4.2.2 451; RFC 3463 §3.8 X.7.1",
    ),
}

# Authenticated submission (RFC 4954 §4, §6; RFC 6409; RFC 8314).
AUTH_SUCCEEDED = Reply(235, "2.7.0", "Authentication successful", "RFC 4954 §6")
AUTH_INVALID = Reply(
    535, "5.7.8", "Authentication credentials invalid", "RFC 4954 §6; RFC 3463 §3.8 X.7.8"
)
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required", "RFC 4954 §6")
AUTH_SYNTAX = Reply(
    501, "5.5.2", "Cannot decode the AUTH response", "RFC 4954 §4; RFC 4616 §2; RFC 3463 X.5.2"
)
SUBMISSION_HELP = Reply(
    214,
    "2.0.0",
    "Commands: EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT; see RFC 6409",
    "RFC 5321 §4.1.1.8",
)
# DeliveryService.submit could not take the message now (a mailbox filled up since RCPT).
SUBMISSION_DEFERRED = Reply(
    451, "4.3.0", "{detail}; try again later", "RFC 5321 §4.2.2 451; RFC 3463 §3.4 X.3.0"
)


def render(refusal: Refuse) -> str:
    """The reply line for a refusal, e.g. `550 5.1.1 <bob@x.test>: no such user here`."""
    return REFUSALS[refusal.reason].render(address=refusal.detail, limit=refusal.limit)


def ehlo_lines(hostname: str, keywords: Sequence[str]) -> list[str]:
    """The multi-line EHLO reply (RFC 5321 §4.1.1.1): host name, then one keyword a line."""
    lines = [hostname, *keywords]
    return [f"250{' ' if i == len(lines) - 1 else '-'}{line}" for i, line in enumerate(lines)]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A reply aiosmtpd writes itself (`said`, a regex) and the one we send instead."""

    said: re.Pattern[str]
    reply: Reply
    verb: str | None = None  # only while this command runs, when the text is shared


def _said(text: str, verb: str | None, reply: Reply, *, prefix: bool = False) -> Rewrite:
    return Rewrite(re.compile(re.escape(text) + (".*" if prefix else "")), reply, verb)


def _syntax(usage: str) -> Reply:
    return Reply(501, "5.5.4", f"Syntax: {usage}", "RFC 5321 §4.2.2 501; RFC 3463 §3.6 X.5.4")


def _sequence(text: str) -> Reply:
    return Reply(503, "5.5.1", text, "RFC 5321 §4.2.2 503; RFC 3463 §3.6 X.5.1")


_UNRECOGNISED = Reply(
    500, "5.5.1", "Error: command not recognized", "RFC 5321 §4.2.2 500; RFC 3463 §3.6 X.5.1"
)
_BAD_SYNTAX = Reply(500, "5.5.2", "Error: bad syntax", "RFC 5321 §4.2.2 500; RFC 3463 §3.6 X.5.2")
_PARAMETERS = Reply(
    555, "5.5.4", "parameters not recognized or not implemented", "RFC 5321 §4.1.1.11"
)
_MAIL_SYNTAX = "MAIL FROM:<address> [SP <mail-parameters>]"
_RCPT_SYNTAX = "RCPT TO:<address> [SP <rcpt-parameters>]"

# aiosmtpd 1.4.6 (aiosmtpd/smtp.py) reply texts, checked by tests/smtp/test_mx.py.
AIOSMTPD: tuple[Rewrite, ...] = (
    _said("553 5.1.3 Error: malformed address", "MAIL", BAD_SENDER_SYNTAX),
    _said("553 5.1.3 Error: malformed address", "RCPT", BAD_RECIPIENT_SYNTAX),
    _said("500 Command line too long", None, COMMAND_LINE_TOO_LONG),
    _said("552 Error: message size exceeds fixed maximum message size", None, MESSAGE_TOO_BIG),
    # RFC 5321 §3.3: DATA after no (accepted) RCPT may be answered 503 or 554.
    _said("503 Error: need RCPT command", None, NO_VALID_RECIPIENTS),
    _said("503 Error: need MAIL command", None, _sequence("Error: need MAIL command")),
    _said("503 Error: nested MAIL command", None, _sequence("Error: nested MAIL command")),
    _said("503 Error: send HELO first", None, _sequence("Error: send HELO/EHLO first")),
    _said("503 Error: send EHLO first", None, _sequence("Error: send EHLO first")),
    _said("503 Already authenticated", None, _sequence("Already authenticated")),
    _said('500 Error: command "', None, _UNRECOGNISED, prefix=True),
    _said("500 Error: command 'AUTH' not recognized", None, _UNRECOGNISED),
    _said("500 Error: bad syntax", None, _BAD_SYNTAX),
    _said("501 Syntax: MAIL FROM: <address>", None, _syntax(_MAIL_SYNTAX), prefix=True),
    _said("501 Syntax: RCPT TO: <address>", None, _syntax(_RCPT_SYNTAX), prefix=True),
    _said("501 Syntax: DATA", None, _syntax("DATA")),
    _said("501 Syntax: RSET", None, _syntax("RSET")),
    _said("501 Syntax: QUIT", None, _syntax("QUIT")),
    _said("501 Syntax: STARTTLS", None, _syntax("STARTTLS")),
    _said("501 Syntax: VRFY <address>", None, _syntax("VRFY <address>")),
    _said("502 Could not VRFY ", None, _syntax("VRFY <address>"), prefix=True),
    _said("501 Error: BODY can only be one of 7BIT, 8BITMIME", None, _syntax("BODY=7BIT|8BITMIME")),
    _said("501 Error: SMTPUTF8 takes no arguments", None, _syntax("SMTPUTF8")),
    _said("555 MAIL FROM parameters not recognized or not implemented", None, _PARAMETERS),
    _said("555 RCPT TO parameters not recognized or not implemented", None, _PARAMETERS),
    _said("501 Not enough value", None, _syntax("AUTH <mechanism> [initial-response]")),
    _said("501 Too many values", None, _syntax("AUTH <mechanism> [initial-response]")),
    _said(
        "502 EXPN not implemented",
        None,
        Reply(502, "5.5.1", "EXPN not implemented", "RFC 5321 §3.5.3, §4.2.4"),
    ),
    _said(
        "220 Ready to start TLS",
        None,
        Reply(220, "2.0.0", "Ready to start TLS", "RFC 3207 §4; RFC 3463 §3.1"),
    ),
    _said(
        "454 TLS not available",
        None,
        Reply(454, "4.7.0", "TLS not available", "RFC 3207 §4; RFC 3463 §3.8 X.7.0"),
    ),
    _said(
        "530 Must issue a STARTTLS command first",
        None,
        Reply(530, "5.7.0", "Must issue a STARTTLS command first", "RFC 3207 §4"),
    ),
    _said(
        "554 Command refused due to lack of security",
        None,
        Reply(554, "5.7.0", "Command refused due to lack of security", "RFC 3207 §4.1"),
    ),
)


def _by_code(rewrites: tuple[Rewrite, ...]) -> dict[str, tuple[Rewrite, ...]]:
    codes: dict[str, list[Rewrite]] = {}
    for rewrite in rewrites:
        codes.setdefault(rewrite.said.pattern[:3], []).append(rewrite)
    return {code: tuple(group) for code, group in codes.items()}


# Every reply line passes through translate(); most (250, 354) have no rewrite at all.
_AIOSMTPD_BY_CODE = _by_code(AIOSMTPD)


def translate(status: str, verb: str | None) -> str:
    """Our reply for a line aiosmtpd wrote during `verb`; other lines pass unchanged."""
    for rewrite in _AIOSMTPD_BY_CODE.get(status[:3], ()):
        if rewrite.verb not in (None, verb):
            continue
        if rewrite.said.fullmatch(status):
            return rewrite.reply.render()
    return status
