"""Panel logins under penalties, through the real web server: the client address is the
connection's (proxy headers are off), and each test client picks its own 127.0.0.x."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mailhost.runtime import Runtime
from mailhost.settings import Settings
from tests.serving import serving, serving_settings
from tests.web.conftest import PW, Panel, World

CAP = "0.05"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return serving_settings(data_dir, database_url, CAP)


@pytest.fixture
async def web_port(world: World) -> AsyncIterator[int]:
    async with serving(world.runtime) as ports:
        yield ports["Web panel"]


async def from_address(port: int, source: str, level: str, password: str) -> int:
    """One browser on `source` logging in at `level`: the answer's status."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as c:
        login = {"customer": "acme", "user": "alice@a.example", "domain": "a.example"}[level]
        return (await Panel(c).login(level, login, password)).status_code


async def standing_failures(runtime: Runtime, source: str) -> int:
    since = datetime.now(UTC) - timedelta(hours=1)
    return (await runtime.penalties.attempts.failures_from(source, since, 100)).failures


@pytest.mark.parametrize("level", ["customer", "domain", "user"])
async def test_a_stale_browser_never_locks_its_owner_out(
    world: World, web_port: int, level: str
) -> None:
    rt = world.runtime
    for _ in range(6):  # a saved, outdated password, every answer 401 (never 429)
        assert await from_address(web_port, "127.0.0.2", level, "last month's password") == 401
    assert await standing_failures(rt, "127.0.0.2") == 6
    # Another address owes nothing: the right password logs in at once.
    assert await rt.penalties.address_wait("127.0.0.3") == 0.0
    assert await from_address(web_port, "127.0.0.3", level, PW) == 303
    # The failing address, with the right password, gets in after its penalty.
    assert await from_address(web_port, "127.0.0.2", level, PW) == 303
    assert await standing_failures(rt, "127.0.0.2") == 0
