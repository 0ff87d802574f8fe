"""Domain names, local parts and addresses: parsed once at the edge, trusted after."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna

from mailhost.errors import InvalidAddress, InvalidDomainName

# RFC 5321 §4.1.2: atext for dot-atom local parts, which RFC 6531 §3.3 extends by every
# non-ASCII character (UTF8-non-ascii). Surrogates are no characters: they are what
# invalid UTF-8 on the wire decodes to (surrogateescape), and are refused. Quoted
# strings are not accepted; remote senders are handled by the SMTP layer as raw strings.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\ud7ff\ue000-\U0010ffff]+")
# Usernames of hosted users become directory names, so they use a safe subset.
_USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Octets, not characters: RFC 6531 §3.3 keeps RFC 5321's limits on the UTF-8 form.
MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN = 253  # RFC 1035 §2.3.4 without the trailing dot
MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3 path (256) minus the angle brackets


@functools.lru_cache(maxsize=4096)
def _idna_ascii(text: str) -> str:
    # Cached: an MX sees the same few domains in every RCPT, and IDNA is slow Python.
    return idna.encode(text, uts46=True).decode("ascii").lower()


@dataclass(frozen=True, slots=True, order=True)
class DomainName:
    """An IDNA-normalised (A-label, lower case) fully qualified domain name."""

    ascii: str

    @classmethod
    def parse(cls, raw: str) -> DomainName:
        text = raw.strip().rstrip(".")
        if not text:
            raise InvalidDomainName("a domain name is required")
        try:
            ascii_name = _idna_ascii(text)
        except idna.IDNAError as exc:
            raise InvalidDomainName(f"{raw!r} is not a valid domain name: {exc}") from exc
        if len(ascii_name) > MAX_DOMAIN:
            raise InvalidDomainName(f"{raw!r} is longer than {MAX_DOMAIN} characters")
        labels = ascii_name.split(".")
        if len(labels) < 2:
            raise InvalidDomainName(
                f"{raw!r} is not a fully qualified domain name (expected e.g. example.com)"
            )
        for label in labels:
            if not _LABEL.match(label):
                raise InvalidDomainName(f"{raw!r} has an invalid label {label!r}")
        if labels[-1].isdigit():
            raise InvalidDomainName(f"{raw!r} looks like an IP address, not a domain name")
        return cls(ascii_name)

    @property
    def unicode(self) -> str:
        return str(idna.decode(self.ascii))

    @property
    def mail_host(self) -> str:
        """The server name clients of this domain use (the seed's mail.yourdomain.tld)."""
        return f"mail.{self.ascii}"

    def __str__(self) -> str:
        return self.ascii


def parse_username(raw: str) -> str:
    """A hosted user's name: lower-cased, letters, digits, '.', '_' and '-'."""
    name = raw.strip().lower()
    if not name:
        raise InvalidAddress("a username is required")
    if len(name) > MAX_LOCAL_PART:
        raise InvalidAddress(f"username {raw!r} is longer than {MAX_LOCAL_PART} characters")
    if ".." in name or not _USERNAME.match(name):
        raise InvalidAddress(
            f"username {raw!r} may contain only letters, digits, '.', '_' and '-', "
            "and must start and end with a letter or digit"
        )
    return name


def _octets(text: str) -> int:
    # surrogatepass: a surrogate must not turn a length check into an exception.
    return len(text.encode("utf-8", "surrogatepass"))


def check_local_part(raw: str) -> str:
    """An RFC 5321 dot-atom local part, UTF-8 allowed (RFC 6531 §3.3), returned unchanged.

    Unchanged means not normalised either: only the receiving domain may interpret
    a local part (RFC 5321 §2.4), and that includes its Unicode form.
    """
    if not raw or _octets(raw) > MAX_LOCAL_PART:
        raise InvalidAddress(f"local part {raw!r} must be 1 to {MAX_LOCAL_PART} octets")
    if not is_dot_string(raw):
        raise InvalidAddress(f"local part {raw!r} is not a valid RFC 5321 dot-atom")
    return raw


def is_dot_string(text: str) -> bool:
    """RFC 5321 §4.1.2's Dot-string (UTF-8 atoms too, RFC 6531 §3.3), of any length: a
    local part that needs no quotes."""
    return all(_ATEXT.fullmatch(atom) for atom in text.split("."))


@dataclass(frozen=True, slots=True, order=True)
class EmailAddress:
    """local@domain with a validated dot-atom local part and an IDNA domain.

    A U-label domain (bücher.example) is kept as its A-label, which names the same
    domain (RFC 5890 §2.3.2.1), so only a UTF-8 local part makes an address need
    SMTPUTF8 on the wire.
    """

    local: str
    domain: DomainName

    @classmethod
    def parse(cls, raw: str) -> EmailAddress:
        text = raw.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        local, sep, domain = text.rpartition("@")
        if not sep or not local:
            raise InvalidAddress(f"{raw!r} is not an email address (expected user@domain)")
        try:
            parsed_domain = DomainName.parse(domain)
        except InvalidDomainName as exc:
            raise InvalidAddress(f"{raw!r} has an invalid domain: {exc.message}") from exc
        address = cls(check_local_part(local), parsed_domain)
        if _octets(str(address)) > MAX_ADDRESS:
            raise InvalidAddress(f"{raw!r} is longer than {MAX_ADDRESS} octets")
        return address

    @classmethod
    def hosted(cls, raw: str) -> EmailAddress:
        """An address of a hosted user: the local part must be a valid username.

        Usernames stay ASCII although RFC 6531 §3.3 would allow UTF-8: they are
        Maildir directory names and POP3 logins, and are unique case-insensitively,
        which for Unicode would need a normalisation and case-folding rule first.
        """
        address = cls.parse(raw)
        return cls(parse_username(address.local), address.domain)

    def __str__(self) -> str:
        return f"{self.local}@{self.domain.ascii}"
