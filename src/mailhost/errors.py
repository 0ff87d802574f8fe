"""The one exception tree of mailhost; every edge maps it to its own replies.

MailhostError                      code
├── InvalidInput                   invalid_input
│   ├── InvalidDomainName          invalid_domain
│   ├── InvalidAddress             invalid_address
│   ├── InvalidSize                invalid_size
│   ├── WeakPassword               weak_password
│   ├── BodyTooLarge               body_too_large
│   ├── AliasLoop                  alias_loop
│   └── InvalidSrsAddress          invalid_srs_address
│       ├── MalformedSrsAddress    srs_malformed
│       ├── ForgedSrsAddress       srs_forged
│       └── ExpiredSrsAddress      srs_expired
├── NotFound                       not_found (and *_not_found below)
├── AlreadyExists                  already_exists (and *_exists below)
│   └── SmtpAccountExists          smtp_account_exists
├── LimitReached                   plan_limit_reached
│   └── ForwardLimitReached        forward_limit_reached
├── OwnershipNotProven             ownership_not_proven
├── NotPermitted                   not_permitted
├── ConfigError                    config_error
├── MailboxInUse                   mailbox_in_use
└── TemporaryFailure               temporary_failure
"""

from __future__ import annotations


class MailhostError(Exception):
    """A refusal a user can act on; `code` is stable, `message` names the object."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(MailhostError):
    code = "invalid_input"


class InvalidDomainName(InvalidInput):
    code = "invalid_domain"


class InvalidAddress(InvalidInput):
    code = "invalid_address"


class InvalidSize(InvalidInput):
    code = "invalid_size"


class WeakPassword(InvalidInput):
    code = "weak_password"


class BodyTooLarge(InvalidInput):
    """An HTTP request body over `[web] max_body_size`."""

    code = "body_too_large"


class AliasLoop(InvalidInput):
    """An alias whose targets lead back to itself, or further than aliases may chain."""

    code = "alias_loop"


class InvalidSrsAddress(InvalidInput):
    """A bounce address that cannot be reversed to the sender of forwarded mail.

    Not an InvalidAddress: the address may be well formed, and a syntax reply for a
    forgery would mislead. The subclasses say why, so an edge can tell a forgery
    (a policy refusal) from an address that is simply wrong or too old.
    """

    code = "invalid_srs_address"


class MalformedSrsAddress(InvalidSrsAddress):
    code = "srs_malformed"


class ForgedSrsAddress(InvalidSrsAddress):
    """The hash does not match: not made with our secret, or altered since."""

    code = "srs_forged"


class ExpiredSrsAddress(InvalidSrsAddress):
    code = "srs_expired"


class NotFound(MailhostError):
    code = "not_found"


class UnknownPlan(NotFound):
    code = "plan_not_found"


class UnknownCustomer(NotFound):
    code = "customer_not_found"


class UnknownDomain(NotFound):
    code = "domain_not_found"


class UnknownUser(NotFound):
    code = "user_not_found"


class NoMailbox(NotFound):
    code = "mailbox_not_found"


class NoSmtpAccount(NotFound):
    code = "smtp_account_not_found"


class UnknownAlias(NotFound):
    code = "alias_not_found"


class AlreadyExists(MailhostError):
    code = "already_exists"


class PlanExists(AlreadyExists):
    code = "plan_exists"


class CustomerExists(AlreadyExists):
    code = "customer_exists"


class DomainExists(AlreadyExists):
    code = "domain_exists"


class UserExists(AlreadyExists):
    code = "user_exists"


class MailboxExists(AlreadyExists):
    code = "mailbox_exists"


class SmtpAccountExists(AlreadyExists):
    code = "smtp_account_exists"


class AliasExists(AlreadyExists):
    """An alias where a user is to be added: one address, one of the two."""

    code = "alias_exists"


class InUse(MailhostError):
    """The object is still referenced (a plan with customers, say)."""

    code = "in_use"


class LimitReached(MailhostError):
    code = "plan_limit_reached"


class ForwardLimitReached(LimitReached):
    """A domain's aliases already send to `[delivery] max_external_forwards_per_domain`
    addresses elsewhere: not a plan's limit, the server's guard against an open relay."""

    code = "forward_limit_reached"


class OwnershipNotProven(MailhostError):
    """A domain's DNS proof of ownership was looked for and not found.

    Like LimitReached a conflict with the current state, not a lack of permission:
    publishing the record makes the same request succeed.
    """

    code = "ownership_not_proven"


class NotPermitted(MailhostError):
    code = "not_permitted"


class ConfigError(MailhostError):
    code = "config_error"


class MailboxInUse(MailhostError):
    code = "mailbox_in_use"


class TemporaryFailure(MailhostError):
    code = "temporary_failure"
