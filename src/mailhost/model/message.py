"""What a message's header says about who wrote it: the addresses submission holds to scope."""

from __future__ import annotations

import re
from email.policy import default as email_policy

# RFC 5322 §2.2: a header field is a line starting with its name; continuation lines
# (folding, §2.2.3) start with white space. The header section ends at the first empty line.
_HEADER_END = re.compile(rb"\r\n\r\n|\A\r\n")
# RFC 5322 §3.6.2 and §3.6.6: every field that names who wrote or sent the message,
# so that a Sender: or Resent-From: cannot claim what a From: may not.
_FROM_FIELD = re.compile(
    rb"(?im)^(?:resent-)?(?:from|sender)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)"
)


def author_addresses(message: bytes) -> list[str] | None:
    """The addr-specs in the From:, Sender:, Resent-From: and Resent-Sender: fields of
    `message`'s header (RFC 5322 §3.6.2, §3.6.6).

    None when there is no such field at all. An empty string stands for a
    mailbox that could not be parsed, so the caller can refuse it rather than
    overlook it. Encoded words are not decoded: an addr-spec is ASCII here,
    since SMTPUTF8 is not offered (RFC 6531).
    """
    end = _HEADER_END.search(message)
    header = message if end is None else message[: end.start()]
    fields = [m.group(1).decode("ascii", "replace") for m in _FROM_FIELD.finditer(header)]
    if not fields:
        return None
    addresses: list[str] = []
    for field in fields:
        addresses += _addr_specs(re.sub(r"\r\n(?=[ \t])", "", field))
    return addresses


def _addr_specs(value: str) -> list[str]:
    try:
        parsed = email_policy.header_factory("From", value)
        found = [mailbox.addr_spec for mailbox in getattr(parsed, "addresses", ())]
    except Exception:  # the stdlib parser has crash bugs (AttributeError on ".:")
        return [""]  # unparsable: the caller refuses it
    if getattr(parsed, "defects", ()) or not found:
        return [""]
    return [address if "@" in address else "" for address in found]
