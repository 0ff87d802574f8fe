"""schemathesis against the OpenAPI document: generated and fuzzed calls never get a 5xx."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.runtime import Runtime
from mailhost.web.app import create_web_app
from mailhost.web.server import start_web_server
from tests.web.conftest import World

MAX_EXAMPLES = 20
ST = Path(sys.executable).with_name("st")


@pytest.fixture
async def api_url(world: World, runtime: Runtime) -> AsyncIterator[str]:
    server = await start_web_server(create_web_app(runtime), "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


async def test_schemathesis_finds_no_server_errors(
    api_url: str, world: World, tmp_path: Path
) -> None:
    _, token = await world.runtime.web_access.api_tokens.create(ProviderActor("root"), "fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    process = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{api_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "5",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "10",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    summary = re.search(r"(\d+) generated, (\d+) passed", text)
    assert summary is not None, text
    assert int(summary.group(1)) == int(summary.group(2)) > 500, text
