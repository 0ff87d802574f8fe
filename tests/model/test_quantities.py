"""ByteSize.exact: the size the API answers with, which parses back to the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.quantities import MAX_BYTES, ByteSize


@pytest.mark.parametrize(
    ("size", "written"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1KB"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (10**7, "10MB"),
        (10 * 2**20, "10MiB"),
        (10 * 2**20 + 1, "10485.761KB"),
        (2_500_000_000, "2.5GB"),
        (2**30, "1GiB"),
        (2 * 10**12, "2TB"),
    ],
)
def test_exact_writes_the_largest_unit_that_needs_no_rounding(size: int, written: str) -> None:
    assert ByteSize(size).exact == written


@given(st.integers(min_value=0, max_value=MAX_BYTES))
def test_exact_parses_back_to_the_same_size(size: int) -> None:
    assert ByteSize.parse(ByteSize(size).exact) == ByteSize(size)
