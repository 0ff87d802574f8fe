"""model/listing.py: natural order, search and paging as pure rules (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.errors import InvalidInput
from mailhost.model.listing import (
    MAX_PAGE_SIZE,
    Listing,
    ListQuery,
    matches,
    natural_key,
    paginate,
)

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
words = st.text(alphabet="abcXYZ019-. ", max_size=10)


def test_digits_compare_as_numbers_and_case_is_folded() -> None:
    given_names = ["bulk10", "Bulk2", "bulk1", "bulk11", "bulk", "bulk02"]
    assert sorted(given_names, key=natural_key) == [
        "bulk",
        "bulk1",
        "Bulk2",
        "bulk02",
        "bulk10",
        "bulk11",
    ]


def test_punycode_sorts_as_the_unicode_it_stands_for() -> None:
    ordered = sorted(["zeta.example", "xn--bcher-kva.example", "bzzz.example"], key=natural_key)
    assert ordered == ["xn--bcher-kva.example", "bzzz.example", "zeta.example"]
    assert matches("BÜCHER", ["xn--bcher-kva.example"])
    assert matches("bucher", ["bücher.example"])
    assert natural_key("xn--broken--.example")  # not valid punycode: sorted as written


@given(st.integers(0, 10**12), st.integers(0, 10**12), words)
def test_numbers_inside_names_order_as_numbers(a: int, b: int, stem: str) -> None:
    stem = stem.rstrip("0123456789")
    left, right = natural_key(f"{stem}{a}"), natural_key(f"{stem}{b}")
    assert (left < right) == (a < b)


@given(names, names, names)
def test_the_key_is_a_total_order(a: str, b: str, c: str) -> None:
    ka, kb, kc = natural_key(a), natural_key(b), natural_key(c)
    assert (ka == kb) == (a == b)  # distinct names never tie
    assert (ka < kb) or (kb < ka) or a == b
    if ka < kb and kb < kc:
        assert ka < kc


@given(st.lists(st.integers(), max_size=60), st.integers(1, 25))
def test_paging_covers_every_item_exactly_once(items: list[int], size: int) -> None:
    seen: list[int] = []
    first = paginate(items, size, 0)
    for page in range(first.pages):
        window = paginate(items, size, page * size)
        assert window.total == len(items) and window.page == page + 1
        seen.extend(window.items)
    assert seen == items
    assert first.pages == max(1, -(-len(items) // size))


@given(st.lists(words, max_size=30), words)
def test_search_is_case_insensitive(rows: list[str], search: str) -> None:
    listing: Listing[str] = Listing({"name": natural_key}, "name", lambda r: (r,))
    found = listing.apply(rows, ListQuery(search=search, limit=MAX_PAGE_SIZE)).items
    upper = listing.apply(rows, ListQuery(search=search.upper(), limit=MAX_PAGE_SIZE)).items
    assert found == upper
    assert all(all(w.casefold() in r.casefold() for w in search.split()) for r in found)
    assert len(found) == sum(1 for r in rows if matches(search, [r]))


def test_columns_sort_with_ties_in_natural_order_and_bad_values_are_refused() -> None:
    rows = [("b10", 5), ("b2", 5), ("b1", 9)]
    listing: Listing[tuple[str, int]] = Listing(
        {"name": lambda r: natural_key(r[0]), "used": lambda r: r[1]}, "name", lambda r: (r[0],)
    )
    by_used = listing.apply(rows, ListQuery(sort="used", descending=True)).items
    assert [r[0] for r in by_used] == ["b1", "b2", "b10"]
    assert [r[0] for r in listing.apply(rows, ListQuery(descending=True)).items] == [
        "b10",
        "b2",
        "b1",
    ]
    with pytest.raises(InvalidInput, match="sort: 'size' is not a column to sort by"):
        listing.apply(rows, ListQuery(sort="size"))
    with pytest.raises(InvalidInput, match="limit"):
        ListQuery(limit=MAX_PAGE_SIZE + 1)
    with pytest.raises(InvalidInput, match="offset"):
        ListQuery(offset=-1)
