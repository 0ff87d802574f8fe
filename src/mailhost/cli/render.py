"""Rich tables for people and `--json` for scripts, from the same rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table

Row = Mapping[str, object]


def show(title: str, rows: Sequence[Row], *, as_json: bool, empty: str) -> None:
    console = Console(highlight=False, soft_wrap=True)
    if as_json:
        console.out(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        console.print(empty)
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row.values()))
    console.print(table)


def done(message: str) -> None:
    Console(highlight=False, soft_wrap=True).print(message)


def size_text(value: object) -> str:
    return "unlimited" if value is None else str(value)
