"""What every command needs: the data directory, settings and an open Runtime."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from mailhost.errors import ConfigError, InvalidInput
from mailhost.model.actors import ProviderActor
from mailhost.model.records import RemovalSummary
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings

T = TypeVar("T")
CONFIG_NAME = "mailhost.toml"
# The CLI runs on the server itself, as the operator.
OPERATOR = ProviderActor("cli")
# The value that clears a limit in `mailbox set` and `smtp set` (leaving the option out
# keeps what is there).
UNLIMITED = "unlimited"
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask before deleting mail; remove it too")
]


@dataclass(frozen=True, slots=True)
class CliState:
    data_dir: Path


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    assert isinstance(root.obj, CliState)
    return root.obj


def settings_for(data_dir: Path) -> Settings:
    config = data_dir / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(
            f"{config} does not exist; run `mailhost init --data-dir {data_dir}` first"
        )
    return load_settings(config, data_dir, os.environ)


def with_runtime(ctx: typer.Context, work: Callable[[Runtime], Awaitable[T]]) -> T:
    settings = settings_for(state(ctx).data_dir)

    async def main() -> T:
        async with Runtime(settings) as runtime:
            return await work(runtime)

    return asyncio.run(main())


def unlimited_or(raw: str, parse: Callable[[str], T]) -> T | None:
    """A limit as written on the command line: a value, or `unlimited` for none."""
    return None if raw.strip().lower() == UNLIMITED else parse(raw)


def read_password(password_stdin: bool, what: str) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password: str = typer.prompt(f"Password for {what}", hide_input=True, confirmation_prompt=True)
    return password


def confirm_removal(summary: RemovalSummary, yes: bool) -> None:
    """Say what a removal deletes; if that includes mail, ask first (or take --yes)."""
    Console(highlight=False, soft_wrap=True).print(str(summary), markup=False)
    if yes or not summary.deletes_mail:
        return
    try:
        agreed = typer.confirm("Delete it for good?", default=False)
    except typer.Abort:  # no answer (stdin closed): the safe one
        agreed = False
    if not agreed:
        raise InvalidInput(f"{summary.kind} {summary.name} was not removed; --yes removes it")
