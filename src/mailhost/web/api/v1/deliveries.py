"""/api/v1/deliveries: the delivery log, searched and paged, as the token's login may read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mailhost.model.delivery_log import MAX_SEARCH, STATUSES, DeliveryLogQuery
from mailhost.web.api.schemas import DeliveryOut, DeliveryPage
from mailhost.web.api.v1.params import Limit, Offset
from mailhost.web.dependencies import ApiActor, Ctx

router = APIRouter(tags=["deliveries"])
SearchQuery = Annotated[
    str,
    Query(
        max_length=MAX_SEARCH,
        description="part of the sender, recipient or message id (any case)",
        examples=["bob@elsewhere"],
    ),
]
StatusQuery = Annotated[
    str, Query(max_length=16, description=f"one of {', '.join(STATUSES)}", examples=["failed"])
]
DomainQuery = Annotated[
    str,
    Query(max_length=253, description="only mail of this hosted domain", examples=["example.com"]),
]


@router.get("/deliveries", summary="Search the delivery log")
async def deliveries(
    ctx: Ctx,
    actor: ApiActor,
    q: SearchQuery = "",
    status: StatusQuery = "",
    domain: DomainQuery = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryPage:
    """Mail sent on to other servers, one item per attempt, newest first, with the remote
    server's reply (like cPanel's Track Delivery). The provider reads all of it, a
    customer its domains' mail, a domain's manager its domain's; a domain user's token
    is refused (403). `domain` naming a domain the token may not see is 404."""
    query = DeliveryLogQuery.parse(q, status, domain, limit=limit, offset=offset)
    page = await ctx.mail_queue.delivery_log(actor, query)
    return DeliveryPage(items=[DeliveryOut.of(e) for e in page.entries], total=page.total)
