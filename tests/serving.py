"""Every listener of a test's runtime on ephemeral ports of 127.0.0.1, started as `serve` does.

Any 127.x.y.z address is this host, so a client can pick its own source address
(`local_addr=("127.0.0.2", 0)`) and look like another machine to the servers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings

HOSTNAME = "mx.hosting.test"
PORT_KEYS = ("MX", "SUBMISSION", "SUBMISSIONS", "POP3", "POP3S", "WEB")


def serving_settings(data_dir: Path, database_url: str, penalty_seconds: str) -> Settings:
    """Ephemeral ports, POP3 without TLS (the localhost operator option), a small penalty cap."""
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_POP3_ALLOW_PLAINTEXT_AUTH": "true",
        "MAILHOST_AUTH_PENALTY_MAX_SECONDS": penalty_seconds,
        **{f"MAILHOST_{key}_PORT": "0" for key in PORT_KEYS},
    }
    return load_settings(None, data_dir, environ)


@contextlib.asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[dict[str, int]]:
    """The runtime's listeners started; yields each one's port by its name ("POP3", ...)."""
    listening = await runtime.start()
    try:
        yield {item.name: int(item.address.rsplit(":", 1)[1]) for item in listening}
    finally:
        for item in listening:
            item.server.close()
        for item in listening:
            await item.server.wait_closed()
        await runtime.stop_worker()
