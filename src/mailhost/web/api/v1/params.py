"""What every v1 route shares: paging and path parameters, parsed once, and the error answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from mailhost.model.actors import Actor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.services.accounts import parse_login
from mailhost.web.api.schemas import ErrorOut
from mailhost.web.dependencies import ApiActor

Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="skip this many items")]
# The patterns document the shape; the parsers behind them (IDNA, RFC 5321) have the last word.
_NAME = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"
DomainPath = Annotated[
    str,
    Path(
        min_length=3,
        max_length=253,
        pattern=r"^[^\s/@.]{1,63}(?:\.[^\s/@.]{1,63})+$",
        description="a domain name, e.g. example.com or bücher.example",
    ),
]
UsernamePath = Annotated[str, Path(max_length=64, pattern=_NAME, description="e.g. alice")]
LoginPath = Annotated[str, Path(max_length=64, pattern=_NAME, description="a customer login")]

_ERRORS = {
    401: "no API token, or not a valid one",
    403: "the token's login may not do this",
    404: "no such object (also: another tenant's object)",
    409: "already exists, or a plan limit is reached",
    422: "the request is not valid",
    503: "a temporary failure; try again later",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in _ERRORS.items()
}


def allowed(require: Callable[[Actor, str], None], what: str) -> Any:
    """The token's actor, held to `require` (a rule of services/access.py) before the
    request body is validated: a login that can never do the operation hears 403
    not_permitted, not what is wrong with a body it should not send, nor that an object
    it names is missing. The service checks again: this only orders the answers."""

    async def check(actor: ApiActor) -> Actor:
        require(actor, what)
        return actor

    return Depends(check)


def domain_name(raw: str) -> DomainName:
    return DomainName.parse(raw)


def user_address(domain: str, username: str) -> EmailAddress:
    return EmailAddress.hosted(f"{username}@{domain_name(domain).ascii}")


def customer_login(raw: str) -> str:
    return parse_login(raw)
