"""Panel forms: a refusal tied to the field it is about, so the page shows it there,
next to what was typed, instead of only at the top."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mailhost.errors import MailhostError


class FieldRefused(Exception):
    """`error` is about the form field `field`."""

    def __init__(self, field: str, error: MailhostError) -> None:
        super().__init__(error.message)
        self.field = field
        self.error = error


@contextmanager
def field(name: str, *kinds: type[MailhostError]) -> Iterator[None]:
    """Refusals raised inside are about field `name`; with `kinds`, only refusals of those
    kinds are, and the rest pass on as they are (to an outer `field`, or to the page).

    One service call may check several fields: stack one `field` per field, each with the
    kinds of refusal only that field can cause (innermost first wins)."""
    try:
        yield
    except MailhostError as refused:
        if kinds and not isinstance(refused, kinds):
            raise
        raise FieldRefused(name, refused) from refused


def refusal(exc: MailhostError | FieldRefused) -> tuple[MailhostError, dict[str, str]]:
    """The error behind `exc`, and the field messages to show (none for a page-wide one)."""
    if isinstance(exc, FieldRefused):
        return exc.error, {exc.field: exc.error.message}
    return exc, {}
