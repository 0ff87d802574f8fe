"""List parameters of the API's collections: `q`, `sort`, `order`, `limit`, `offset`.

The same Listing (web/lists.py) as the panel's page of the same rows, so a search or an
order means the same thing in both. A bad value is 422 `invalid_input` naming the field
(`query.sort: …`), as every other request error.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of `parse`, a
# closure, at runtime, and strings could not name its columns.
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError

from mailhost.errors import InvalidInput
from mailhost.model.listing import MAX_SEARCH, Listing, ListQuery
from mailhost.web.api.v1.params import Limit, Offset

Order = Literal["asc", "desc"]


def list_query(listing: Listing[Any]) -> Any:
    """A dependency giving the ListQuery a collection's query parameters ask for."""
    columns = list(listing.columns)
    first = "newest first" if listing.default_descending else "natural order"

    async def parse(
        q: Annotated[
            str,
            Query(
                max_length=MAX_SEARCH,
                description="only items with every word of this in them, in any case",
            ),
        ] = "",
        sort: Annotated[
            str | None,
            Query(
                max_length=40,
                description=f"the column to sort by, one of: {', '.join(columns)}"
                f" (default {listing.default}, {first}; names sort naturally: bulk2 < bulk10)",
                json_schema_extra={"enum": columns},
            ),
        ] = None,
        order: Annotated[Order | None, Query(description="asc or desc")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> ListQuery:
        column = sort or ""
        try:
            listing.column(column)
        except InvalidInput:
            problem = f"{column!r} is not a column to sort by; use one of {', '.join(columns)}"
            raise RequestValidationError(
                [{"loc": ("query", "sort"), "msg": problem, "type": "value_error"}]
            ) from None
        descending = None if order is None else order == "desc"
        return ListQuery(q.strip(), column, descending, limit, offset)

    return Depends(parse)
