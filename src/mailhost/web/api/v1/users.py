"""/api/v1/domains/{domain}/…: Domain Name Users, POP3 mailboxes and SMTP accounts."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mailhost.model.quantities import ByteSize
from mailhost.web.api.schemas import (
    MailboxIn,
    MailboxOut,
    MailboxPage,
    PasswordIn,
    SmtpAccountIn,
    SmtpAccountOut,
    SmtpAccountPage,
    UserIn,
    UserOut,
    UserPage,
    window,
)
from mailhost.web.api.v1.params import (
    DomainPath,
    Limit,
    Offset,
    UsernamePath,
    domain_name,
    user_address,
)
from mailhost.web.dependencies import ApiActor, Ctx

router = APIRouter(prefix="/domains/{domain}")


@router.get("/users", tags=["users"])
async def users(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, limit: Limit = 100, offset: Offset = 0
) -> UserPage:
    items, total = window(await ctx.users.users(actor, domain_name(domain)), limit, offset)
    return UserPage(items=[UserOut.of(u) for u in items], total=total)


@router.post("/users", status_code=201, tags=["users"])
async def add_user(ctx: Ctx, actor: ApiActor, domain: DomainPath, user: UserIn) -> UserOut:
    address = user_address(domain, user.username)
    created = await ctx.users.add_user(actor, address, user.password, user.recovery_email)
    return UserOut.of(created)


@router.get("/users/{username}", tags=["users"])
async def user(ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath) -> UserOut:
    return UserOut.of(await ctx.users.user(actor, user_address(domain, username)))


@router.put("/users/{username}/password", tags=["users"], status_code=204, response_class=Response)
async def set_password(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath, body: PasswordIn
) -> Response:
    await ctx.users.change_password(actor, user_address(domain, username), body.password)
    return Response(status_code=204)


@router.delete("/users/{username}", tags=["users"], status_code=204, response_class=Response)
async def remove_user(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    """Remove the user with its mailbox and SMTP account."""
    await ctx.users.remove_user(actor, user_address(domain, username))
    return Response(status_code=204)


@router.get("/available-users", tags=["smtp accounts"])
async def available_users(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, limit: Limit = 100, offset: Offset = 0
) -> UserPage:
    """Users that can still be given an SMTP account (at most one per user)."""
    found = await ctx.users.available_users(actor, domain_name(domain))
    items, total = window(found, limit, offset)
    return UserPage(items=[UserOut.of(u) for u in items], total=total)


@router.get("/mailboxes", tags=["mailboxes"])
async def mailboxes(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, limit: Limit = 100, offset: Offset = 0
) -> MailboxPage:
    items, total = window(await ctx.users.mailboxes(actor, domain_name(domain)), limit, offset)
    return MailboxPage(items=[MailboxOut.of(m) for m in items], total=total)


@router.post("/mailboxes", status_code=201, tags=["mailboxes"])
async def add_mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, mailbox: MailboxIn
) -> MailboxOut:
    quota = None if mailbox.quota is None else ByteSize.parse(mailbox.quota)
    created = await ctx.users.add_mailbox(actor, user_address(domain, mailbox.username), quota)
    return MailboxOut.of(created)


@router.delete(
    "/mailboxes/{username}", tags=["mailboxes"], status_code=204, response_class=Response
)
async def remove_mailbox(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    await ctx.users.remove_mailbox(actor, user_address(domain, username))
    return Response(status_code=204)


@router.get("/smtp-accounts", tags=["smtp accounts"])
async def smtp_accounts(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, limit: Limit = 100, offset: Offset = 0
) -> SmtpAccountPage:
    """SMTP accounts with the identifiers of their enabled facilities."""
    found = await ctx.users.smtp_accounts(actor, domain_name(domain))
    items, total = window(found, limit, offset)
    return SmtpAccountPage(items=[SmtpAccountOut.of(a) for a in items], total=total)


@router.post("/smtp-accounts", status_code=201, tags=["smtp accounts"])
async def add_smtp_account(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, account: SmtpAccountIn
) -> SmtpAccountOut:
    """Give a user the authority to send mail out (refused if the user already has one)."""
    address = user_address(domain, account.username)
    facilities = account.facilities.facilities()
    return SmtpAccountOut.of(await ctx.users.add_smtp_account(actor, address, facilities))


@router.delete(
    "/smtp-accounts/{username}", tags=["smtp accounts"], status_code=204, response_class=Response
)
async def remove_smtp_account(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, username: UsernamePath
) -> Response:
    await ctx.users.remove_smtp_account(actor, user_address(domain, username))
    return Response(status_code=204)
