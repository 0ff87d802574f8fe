"""Alias chains as a pure rule: where mail for an alias ends up, or why it cannot.

An alias sends its mail to one or more targets; a target may itself be an alias
(of the same customer), so mail follows a chain. `resolve` walks it with the
alias table given as a mapping: it always ends, finds each final address once
(in the order first met), and names the path of a loop or of a chain longer than
MAX_DEPTH. A final address is anything that is not an alias: a hosted mailbox
or an address elsewhere; the caller tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailhost.model.names import EmailAddress

# Aliases one message may pass through in a row (Postfix's default alias expansion
# stops at 1000 addresses; the depth of a sane chain is two or three).
MAX_DEPTH = 8
# Addresses one alias may expand to in all: an expansion answers one RCPT.
MAX_TARGETS = 100


@dataclass(frozen=True, slots=True)
class Resolved:
    """Every final address the alias reaches, each once."""

    targets: tuple[EmailAddress, ...]


@dataclass(frozen=True, slots=True)
class Looped:
    """`path` starts at the alias and ends with the first alias met twice on it."""

    path: tuple[EmailAddress, ...]


@dataclass(frozen=True, slots=True)
class TooDeep:
    """`path` runs MAX_DEPTH aliases deep and goes on."""

    path: tuple[EmailAddress, ...]


@dataclass(frozen=True, slots=True)
class TooMany:
    """The alias reaches more than MAX_TARGETS final addresses."""

    count: int


Resolution = Resolved | Looped | TooDeep | TooMany


def describe(path: Sequence[EmailAddress]) -> str:
    """`a@x.test -> b@x.test -> a@x.test`, for an error message."""
    return " -> ".join(str(address) for address in path)


def resolve(
    alias: EmailAddress, aliases: Mapping[EmailAddress, Sequence[EmailAddress]]
) -> Resolution:
    """Follow `alias` through `aliases` (alias -> its targets) to its final addresses.

    An alias reached twice by different branches (a diamond) is no loop; one reached
    again from itself is. Iterative, so a hostile table cannot exhaust the stack.
    """
    found: dict[EmailAddress, None] = {}
    # The deepest each alias was expanded at: met again no deeper, it adds nothing new
    # (its targets are found, and a chain too deep through it would have been seen).
    expanded: dict[EmailAddress, int] = {}
    # Each entry: the path to an alias, and the targets of its last element still to visit.
    stack: list[tuple[tuple[EmailAddress, ...], list[EmailAddress]]] = [
        ((alias,), list(reversed(aliases.get(alias, ()))))
    ]
    while stack:
        path, pending = stack[-1]
        if not pending:
            stack.pop()
            expanded[path[-1]] = max(len(path), expanded.get(path[-1], 0))
            continue
        target = pending.pop()
        if target in path:
            return Looped((*path, target))
        if target not in aliases:
            found[target] = None
            if len(found) > MAX_TARGETS:
                return TooMany(len(found))
            continue
        if len(path) + 1 <= expanded.get(target, 0):
            continue  # met before by another branch: its targets are found already
        if len(path) >= MAX_DEPTH:
            return TooDeep((*path, target))
        stack.append(((*path, target), list(reversed(aliases[target]))))
    return Resolved(tuple(found))
