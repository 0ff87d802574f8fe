"""What a message's header says: who wrote it (the addresses submission holds to scope),
and whether the message can travel only over SMTPUTF8."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.errors import NonASCIILocalPartDefect
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
    overlook it. Encoded words are not decoded: an addr-spec is never one. It may
    be UTF-8 (RFC 6532 §3.2); bytes that are not UTF-8 make it unparsable.
    """
    header = _header(message)
    fields = [m.group(1).decode("utf-8", "surrogateescape") for m in _FROM_FIELD.finditer(header)]
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
    # A UTF-8 local part is no defect since RFC 6532; undecodable bytes still are.
    defects = [d for d in getattr(parsed, "defects", ()) if type(d) is not NonASCIILocalPartDefect]
    if defects or not found:
        return [""]
    return [address if "@" in address else "" for address in found]


def needs_smtputf8(sender: str, recipients: Iterable[str], message: bytes) -> bool:
    """Whether the message can be relayed only in an SMTPUTF8 transaction (RFC 6531 §3.2).

    So it can when an envelope address or the header section has UTF-8 in it
    (RFC 6531 §3.4 lets the client decide this from addresses and headers; it is
    Postfix's smtputf8_autodetect_classes = all). Header bytes that are not UTF-8
    are legacy 8-bit junk, which SMTPUTF8 would not make legal: sent as they are.
    """
    if not sender.isascii() or not all(recipient.isascii() for recipient in recipients):
        return True
    header = _header(message)
    if header.isascii():
        return False
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header(message: bytes) -> bytes:
    end = _HEADER_END.search(message)
    return message if end is None else message[: end.start()]
