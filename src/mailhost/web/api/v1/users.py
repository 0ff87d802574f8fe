"""/api/v1/domains/{domain}/…: Domain Name Users, POP3 mailboxes and SMTP accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from mailhost.model.listing import ListQuery
from mailhost.model.names import EmailAddress
from mailhost.model.quotas import parse_quota
from mailhost.web.api.schemas import (
    MailboxIn,
    MailboxOut,
    MailboxPage,
    MailboxPatch,
    PasswordIn,
    SmtpAccountIn,
    SmtpAccountOut,
    SmtpAccountPage,
    SmtpAccountPatch,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
)
from mailhost.web.api.v1.lists import list_query
from mailhost.web.api.v1.params import (
    DomainPath,
    UsernamePath,
    domain_name,
    user_address,
)
from mailhost.web.dependencies import ApiActor, Ctx
from mailhost.web.forms import field
from mailhost.web.lists import MAILBOXES, SMTP_ACCOUNTS, USERS

router = APIRouter(prefix="/domains/{domain}")
UserQuery = Annotated[ListQuery, list_query(USERS)]
MailboxQuery = Annotated[ListQuery, list_query(MAILBOXES)]
SmtpAccountQuery = Annotated[ListQuery, list_query(SMTP_ACCOUNTS)]


@router.get("/users", tags=["users"], summary="List a domain's users")
async def users(ctx: Ctx, actor: ApiActor, domain: DomainPath, query: UserQuery) -> UserPage:
    """`q` looks in the address and recovery address; `sort=mailbox` or `smtp` puts the
    users holding one first."""
    page = USERS.apply(await ctx.users.users(actor, domain_name(domain)), query)
    return UserPage(items=[UserOut.of(u) for u in page.items], total=page.total)


@router.post("/users", status_code=201, tags=["users"], summary="Add a user")
async def add_user(ctx: Ctx, actor: ApiActor, domain: DomainPath, user: UserIn) -> UserOut:
    """A Domain Name User: a login of the domain, which a mailbox and an SMTP account
    can then be given to."""
    address = user_address(domain, user.username)
    created = await ctx.users.add_user(actor, address, user.password, user.recovery_email)
    return UserOut.of(created)


@router.get("/users/{username}", tags=["users"], summary="Show a user")
async def user(ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath) -> UserOut:
    return UserOut.of(await ctx.users.user(actor, user_address(domain, username)))


@router.put(
    "/users/{username}/password",
    tags=["users"],
    status_code=204,
    response_class=Response,
    summary="Set a user's password",
)
async def set_password(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath, body: PasswordIn
) -> Response:
    """Also ends the user's panel sessions and cancels its reset links."""
    await ctx.users.change_password(actor, user_address(domain, username), body.password)
    return Response(status_code=204)


@router.delete(
    "/users/{username}",
    tags=["users"],
    status_code=204,
    response_class=Response,
    summary="Remove a user",
)
async def remove_user(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    """Remove the user with its mailbox and SMTP account."""
    await ctx.users.remove_user(actor, user_address(domain, username))
    return Response(status_code=204)


@router.get("/available-users", tags=["smtp accounts"], summary="Users without an SMTP account")
async def available_users(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, query: UserQuery
) -> UserPage:
    """Users that can still be given an SMTP account (at most one per user)."""
    page = USERS.apply(await ctx.users.available_users(actor, domain_name(domain)), query)
    return UserPage(items=[UserOut.of(u) for u in page.items], total=page.total)


@router.get("/mailboxes", tags=["mailboxes"], summary="List a domain's POP3 mailboxes")
async def mailboxes(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, query: MailboxQuery
) -> MailboxPage:
    """Each with its quota and what it holds now; sortable by `used`, `quota` and
    `percent` (used of quota) as well as by name."""
    page = MAILBOXES.apply(await ctx.users.mailboxes(actor, domain_name(domain)), query)
    return MailboxPage(items=[MailboxOut.of(m) for m in page.items], total=page.total)


@router.post("/mailboxes", status_code=201, tags=["mailboxes"], summary="Give a user a mailbox")
async def add_mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, mailbox: MailboxIn
) -> MailboxOut:
    """Counts toward the plan's POP3/SMTP accounts. A quota is at least 1MB; on a plan with
    a storage limit every mailbox needs one, and all of them together fit in the storage."""
    quota = None if mailbox.quota is None else parse_quota(mailbox.quota)
    created = await ctx.users.add_mailbox(actor, user_address(domain, mailbox.username), quota)
    return MailboxOut.of(created)


@router.get("/mailboxes/{username}", tags=["mailboxes"], summary="Show a user's mailbox")
async def mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> MailboxOut:
    return MailboxOut.of(await ctx.users.mailbox(actor, user_address(domain, username)))


@router.patch("/mailboxes/{username}", tags=["mailboxes"], summary="Change a mailbox's quota")
async def change_mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath, change: MailboxPatch
) -> MailboxOut:
    """Held against the plan's storage as when adding: 409 `plan_limit_reached` says how
    much is left. Takes back what GET answered: only what differs is changed."""
    address = user_address(domain, username)
    found = await ctx.users.mailbox(actor, address)
    change.check_fixed(MailboxOut.of(found))
    if "quota" in change.model_fields_set:
        quota = None if change.quota is None else parse_quota(change.quota)
        found = await ctx.users.set_mailbox_quota(actor, address, quota)
    return MailboxOut.of(found)


@router.delete(
    "/mailboxes/{username}",
    tags=["mailboxes"],
    status_code=204,
    response_class=Response,
    summary="Remove a user's mailbox",
)
async def remove_mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    """The user stays; the mailbox's mail is deleted."""
    await ctx.users.remove_mailbox(actor, user_address(domain, username))
    return Response(status_code=204)


@router.get("/smtp-accounts", tags=["smtp accounts"], summary="List a domain's SMTP accounts")
async def smtp_accounts(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, query: SmtpAccountQuery
) -> SmtpAccountPage:
    """SMTP accounts with the identifiers of their enabled facilities; `q` looks in the
    address and the identifiers (`q=H120`)."""
    page = SMTP_ACCOUNTS.apply(await ctx.users.smtp_accounts(actor, domain_name(domain)), query)
    return SmtpAccountPage(items=[SmtpAccountOut.of(a) for a in page.items], total=page.total)


@router.post(
    "/smtp-accounts", status_code=201, tags=["smtp accounts"], summary="Give a user an SMTP account"
)
async def add_smtp_account(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, account: SmtpAccountIn
) -> SmtpAccountOut:
    """Give a user the authority to send mail out (refused if the user already has one)."""
    address = user_address(domain, account.username)
    facilities = account.facilities.facilities()
    return SmtpAccountOut.of(await ctx.users.add_smtp_account(actor, address, facilities))


@router.get(
    "/smtp-accounts/{username}", tags=["smtp accounts"], summary="Show a user's SMTP account"
)
async def smtp_account(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> SmtpAccountOut:
    """Its `facilities` are what `POST …/smtp-accounts` takes, in the same form."""
    return SmtpAccountOut.of(await ctx.users.smtp_account(actor, user_address(domain, username)))


@router.patch(
    "/smtp-accounts/{username}", tags=["smtp accounts"], summary="Change a user's SMTP account"
)
async def change_smtp_account(
    ctx: Ctx,
    actor: ApiActor,
    domain: DomainPath,
    username: UsernamePath,
    change: SmtpAccountPatch,
) -> SmtpAccountOut:
    """Change the facilities sent; those left out stay as they are. A new submission
    session holds to them at once. Takes back what GET answered: only what differs is
    changed."""
    address = user_address(domain, username)
    found = await ctx.users.smtp_account(actor, address)
    change.check_fixed(SmtpAccountOut.of(found))
    if change.facilities is not None:
        facilities = change.facilities.applied_to(found.facilities)
        found = await ctx.users.set_smtp_facilities(actor, address, facilities)
    return SmtpAccountOut.of(found)


@router.delete(
    "/smtp-accounts/{username}",
    tags=["smtp accounts"],
    status_code=204,
    response_class=Response,
    summary="Remove a user's SMTP account",
)
async def remove_smtp_account(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    await ctx.users.remove_smtp_account(actor, user_address(domain, username))
    return Response(status_code=204)


@router.patch("/users/{username}", tags=["users"], summary="Change a user's recovery address")
async def change_user(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath, change: UserPatch
) -> UserOut:
    """Set or clear (null) `recovery_email`, where the user's reset links and new-address
    login notices go; not the user's own address (422 `invalid_address`, `field`
    recovery_email). Takes back what GET answered: only
    what differs is changed."""
    address = user_address(domain, username)
    found = await ctx.users.user(actor, address)
    change.check_fixed(UserOut.of(found))
    if "recovery_email" in change.model_fields_set and change.recovery_email != (
        found.recovery_email
    ):
        with field("recovery_email"):
            sent = change.recovery_email
            recovery = None if sent is None else EmailAddress.parse(sent)
            found = await ctx.users.set_recovery(actor, address, recovery)
    return UserOut.of(found)
