"""Panel lists: one helper that reads a list page's GET parameters (q, sort, order, page),
applies a model.listing.Listing to rows a service already scoped to the login, and gives
the `list_table` macro (macros.html) what it draws: a search box, sortable column
headers and paging links that keep the other parameters.

A hand-edited URL is never an error page: an unknown column falls back to the default
order, a page past the end shows the last page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from mailhost.model.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_SEARCH,
    Listing,
    ListQuery,
    Page,
    by_name,
    natural_key,
    unlimited_last,
)
from mailhost.model.records import (
    AuditRecord,
    CustomerRecord,
    DomainRecord,
    MailboxRecord,
    PlanRecord,
    SmtpAccountRecord,
    UsageRecord,
    UserRecord,
)

T = TypeVar("T")
_PARAMS = ("q", "sort", "order", "page")


@dataclass(frozen=True)
class Column:
    """A header of a list's table: its label and the column it sorts by (None: unsorted)."""

    label: str
    sort: str | None = None
    numeric: bool = False


@dataclass(frozen=True)
class PanelList(Generic[T]):
    page: Page[T]
    query: ListQuery
    sort: str  # the column in effect
    descending: bool  # the direction in effect
    path: str
    kept: dict[str, str] = field(default_factory=dict)  # the parameters links carry on
    columns: Sequence[Column] = ()
    label: str = "Search"
    empty: str = "Nothing here yet."

    @property
    def items(self) -> Sequence[T]:
        return self.page.items

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    def href(self, **changes: str | int) -> str:
        """This list with `changes` to its parameters, the others kept ("" drops one)."""
        params = {**self.kept, **{k: str(v) for k, v in changes.items()}}
        params = {k: v for k, v in params.items() if v and not (k == "page" and v == "1")}
        return f"{self.path}?{urlencode(params)}" if params else self.path

    def sort_href(self, column: str) -> str:
        """Sort by `column`, from the first page; the column in effect flips its direction."""
        order = ("asc" if self.descending else "desc") if column == self.sort else ""
        return self.href(sort=column, order=order, page="")

    def aria_sort(self, column: str) -> str:
        if column != self.sort:
            return "none"
        return "descending" if self.descending else "ascending"


def _whole(raw: str | None, default: int) -> int:
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def panel_list(
    request: Request,
    rows: Iterable[T],
    listing: Listing[T],
    columns: Sequence[Column],
    *,
    label: str = "Search",
    empty: str = "Nothing here yet.",
    size: int = DEFAULT_PAGE_SIZE,
) -> PanelList[T]:
    """One page of `rows` as the request's q, sort, order and page ask."""
    params = request.query_params
    search = (params.get("q") or "").strip()[:MAX_SEARCH]
    sort = params.get("sort") or ""
    sort = sort if sort in listing.columns else ""
    order = params.get("order")
    descending = None if order not in ("asc", "desc") else order == "desc"
    rows = list(rows)
    query = ListQuery.for_page(
        _whole(params.get("page"), 1), search=search, sort=sort, descending=descending, size=size
    )
    page = listing.apply(rows, query)
    if not page.items and page.total and query.offset:  # past the end: the last page
        query = ListQuery.for_page(
            page.pages, search=search, sort=sort, descending=descending, size=size
        )
        page = listing.apply(rows, query)
    kept = {k: params[k] for k in _PARAMS if params.get(k)}
    kept["q"] = search
    return PanelList(
        page=page,
        query=query,
        sort=listing.column(sort),
        descending=listing.descending(query),
        path=request.url.path,
        kept=kept,
        columns=columns,
        label=label,
        empty=empty,
    )


# How each kind of row is searched and sorted, for the panel and the API alike. The
# default column of a name list is the name, in natural order.


@dataclass(frozen=True)
class CustomerRow:
    """A customer with its usage this month (the provider's customer list)."""

    customer: CustomerRecord
    usage: UsageRecord | None


def _status(domain: DomainRecord) -> str:
    return str(domain.status)


CUSTOMERS: Listing[CustomerRecord] = Listing(
    columns={
        "name": by_name(lambda c: c.login),
        "contact": by_name(lambda c: c.contact_email),
        "plan": lambda c: (natural_key(c.plan.name), natural_key(c.login)),
        "status": lambda c: (not c.enabled,),
    },
    default="name",
    texts=lambda c: (c.login, c.contact_email, c.plan.name),
)


CUSTOMER_ROWS: Listing[CustomerRow] = Listing(
    columns={
        "name": lambda r: CUSTOMERS.columns["name"](r.customer),
        "contact": lambda r: CUSTOMERS.columns["contact"](r.customer),
        "plan": lambda r: CUSTOMERS.columns["plan"](r.customer),
        "status": lambda r: CUSTOMERS.columns["status"](r.customer),
        "domains": lambda r: 0 if r.usage is None else r.usage.domains,
        "accounts": lambda r: 0 if r.usage is None else r.usage.accounts,
        "storage": lambda r: 0 if r.usage is None else r.usage.storage_bytes,
        "transfer": lambda r: 0 if r.usage is None else r.usage.transfer_bytes,
    },
    default="name",
    texts=lambda r: CUSTOMERS.texts(r.customer),
)

USAGE: Listing[UsageRecord] = Listing(
    columns={
        "name": by_name(lambda u: u.customer_login),
        "plan": lambda u: natural_key(u.plan.name),
        "domains": lambda u: u.domains,
        "accounts": lambda u: u.accounts,
        "storage": lambda u: u.storage_bytes,
        "transfer": lambda u: u.transfer_bytes,
    },
    default="name",
    texts=lambda u: (u.customer_login, u.plan.name),
)

PLANS: Listing[PlanRecord] = Listing(
    columns={"name": by_name(lambda p: p.name)},
    default="name",
    texts=lambda p: (p.name,),
)

DOMAINS: Listing[DomainRecord] = Listing(
    columns={
        "name": by_name(lambda d: d.name.unicode),
        "customer": lambda d: (natural_key(d.customer_login), natural_key(d.name.unicode)),
        "status": lambda d: _status(d),
    },
    default="name",
    texts=lambda d: (d.name.ascii, d.name.unicode, d.customer_login, _status(d)),
)

USERS: Listing[UserRecord] = Listing(
    columns={
        "name": by_name(lambda u: u.address.local),
        "mailbox": lambda u: not u.has_mailbox,
        "smtp": lambda u: not u.has_smtp_account,
    },
    default="name",
    texts=lambda u: (str(u.address), u.recovery_email or ""),
)

MAILBOXES: Listing[MailboxRecord] = Listing(
    columns={
        "name": by_name(lambda m: m.address.local),
        "used": lambda m: m.used_bytes,
        "quota": lambda m: unlimited_last(None if m.quota is None else m.quota.bytes),
        "percent": lambda m: 0.0 if not m.quota else m.used_bytes / m.quota.bytes,
    },
    default="name",
    texts=lambda m: (str(m.address),),
)

SMTP_ACCOUNTS: Listing[SmtpAccountRecord] = Listing(
    columns={
        "name": by_name(lambda a: a.address.local),
        "facilities": lambda a: natural_key(" ".join(a.facilities.identifiers)),
    },
    default="name",
    texts=lambda a: (str(a.address), *a.facilities.identifiers),
)

AUDIT: Listing[AuditRecord] = Listing(
    columns={
        "at": lambda e: (e.at, e.id),
        "actor": lambda e: natural_key(e.actor),
        "action": lambda e: natural_key(e.action),
        "target": lambda e: natural_key(e.target),
    },
    default="at",
    texts=lambda e: (e.actor, e.action, e.target, e.detail),
    default_descending=True,
)

AUDIT_COLUMNS = (Column("When", "at"), Column("What happened"))
