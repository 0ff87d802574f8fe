"""The audit log in words: every action code once, as the sentence people read.

The log stores stable codes (`smtp.add`) so that scripts and the API can match on
them; the panel shows `alice@example.test: SMTP account added with R H120, by the
example.test domain manager`. `PHRASES` holds every code that `audit.record` is
called with anywhere in mailhost; a test reads the source for those calls, so a
new code without a sentence fails the build instead of showing up raw. An entry
written by another version (a code this one does not know) is still shown, as
its code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailhost.model.records import AuditRecord


@dataclass(frozen=True, slots=True)
class Phrase:
    """How one action code reads. `what` and `subject` may use {target}, and {head}
    and {tail} for a target of two parts ("alice@a.example laptop": head and tail)."""

    what: str
    # How a non-empty detail follows `what`; "" leaves the detail out (it says nothing
    # the reader needs, such as a token's row id).
    detail: str = " ({})"
    subject: str = "{target}"


PHRASES: Mapping[str, Phrase] = {
    "plan.add": Phrase("plan added", " with {}"),
    "customer.add": Phrase("customer added", " on plan {}"),
    "customer.plan": Phrase("customer moved", " to plan {}"),
    "customer.contact": Phrase("contact address changed", " to {}"),
    "customer.enable": Phrase("customer enabled"),
    "customer.disable": Phrase("customer disabled"),
    "customer.remove": Phrase("customer removed, with its domains and their mail"),
    "domain.add": Phrase("domain added"),
    "domain.verify": Phrase("domain verified: its DNS proof was seen"),
    "domain.trust": Phrase("domain marked verified without a DNS proof"),
    "domain.enable": Phrase("domain enabled"),
    "domain.disable": Phrase("domain disabled"),
    "domain.remove": Phrase("domain removed, with its users and their mail"),
    "domain.postmaster": Phrase("postmaster and abuse mail changed"),
    "domain.passwd": Phrase("Domain Name Level password changed"),
    "user.add": Phrase("user added"),
    "user.passwd": Phrase("password changed"),
    "user.recovery": Phrase("recovery address changed", " to {}"),
    "user.remove": Phrase("user removed, with its mailbox and SMTP account"),
    "mailbox.add": Phrase("POP3 mailbox added", " with {}"),
    "mailbox.quota": Phrase("POP3 mailbox changed", " to {}"),
    "mailbox.remove": Phrase("POP3 mailbox removed, with its mail"),
    "smtp.add": Phrase("SMTP account added", " with {}"),
    "smtp.change": Phrase("SMTP account changed", " to {}"),
    "smtp.remove": Phrase("SMTP account removed"),
    "alias.add": Phrase("alias added", ", sending {}"),
    "alias.remove": Phrase("alias removed", " ({} only)"),
    "catchall.set": Phrase("catch-all turned on", ": unknown addresses go {}"),
    "catchall.clear": Phrase("catch-all turned off: unknown addresses are refused"),
    "password.reset": Phrase("password reset", " ({})"),
    "admin.add": Phrase("provider admin added"),
    "api_token.add": Phrase("API token created", ""),
    "api_token.revoke": Phrase("API token revoked"),
    "app_password.add": Phrase("app password “{tail}” created", subject="{head}"),
    "app_password.revoke": Phrase("app password “{tail}” revoked", subject="{head}"),
    "two_factor.on": Phrase("two-factor authentication turned on"),
    "two_factor.recovery_codes": Phrase("new two-factor recovery codes made"),
    "two_factor.off": Phrase("two-factor authentication turned off"),
}

# "domains=3 storage=2.5GB" and "sessions ended=1 reset links cancelled=0": a key runs
# from the previous value (or the start) to "=", its value to the next space.
_PAIR = re.compile(r"\s*([^=;]+?)=(\S+)")


def describe(entry: AuditRecord) -> str:
    """The entry as one sentence: what it is about, what happened, by whom."""
    return f"{about(entry)}: {happened(entry)}, {by(entry.actor)}"


def about(entry: AuditRecord) -> str:
    phrase = PHRASES.get(entry.action)
    subject = "{target}" if phrase is None else phrase.subject
    return subject.format(**_parts(entry.target))


def happened(entry: AuditRecord) -> str:
    """What happened, with its detail ("SMTP account added with R H120")."""
    phrase = PHRASES.get(entry.action)
    if phrase is None:
        return entry.action if not entry.detail else f"{entry.action} ({entry.detail})"
    what = phrase.what.format(**_parts(entry.target))
    detail = readable_detail(entry.detail)
    if not detail or not phrase.detail:
        return what
    return what + phrase.detail.format(detail)


def by(actor: str) -> str:
    """`provider:cli`, `customer:acme`, ... (model/actors.py) as "by ..." words."""
    kind, _, name = actor.partition(":")
    if kind == "provider":
        return "by the provider (command line)" if name == "cli" else f"by provider admin {name}"
    if kind == "customer":
        return f"by customer {name}"
    if kind == "domain":
        return f"by the {name} domain manager"
    if kind == "user":
        return f"by user {name}"
    return f"by {actor}"


def readable_detail(detail: str) -> str:
    """`key=value` pairs as "key value, key value"; parts stay apart at ";"."""
    return "; ".join(_readable(part.strip()) for part in detail.split(";") if part.strip())


def _readable(part: str) -> str:
    pairs = _PAIR.findall(part)
    if not pairs or _PAIR.sub("", part).strip():  # not only pairs: as written
        return part
    return ", ".join(f"{key.strip()} {value.replace(',', ', ')}" for key, value in pairs)


def _parts(target: str) -> dict[str, str]:
    head, _, tail = target.partition(" ")
    return {"target": target, "head": head, "tail": tail}
