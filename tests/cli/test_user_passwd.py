"""`mailhost user passwd` ends the user's panel sessions and reset links, from another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailhost.errors import NotFound
from mailhost.model.actors import ProviderActor, UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login
from mailhost.settings import load_settings
from tests.conftest import cheap_passwords

OP = ProviderActor("test")
PW = "correct horse battery"
BOB = EmailAddress.hosted("bob@example.com")


def mailhost(data_dir: Path, env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_user_passwd_ends_the_users_sessions_and_reset_links(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    mailhost(data_dir, env, "init", "--hostname", "mx.hosting.test")
    async with Runtime(load_settings(None, data_dir, env), passwords=cheap_passwords()) as rt:
        await rt.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
        await rt.services.accounts.add_domain(OP, DomainName.parse("example.com"), "acme", PW)
        user = await rt.services.users.add_user(OP, BOB, PW, recovery="bob@elsewhere.test")
        actor = UserActor(user.id, user.domain_id, user.customer_id, BOB)
        session, _ = await rt.web_access.sessions.open(Login("user", user.id, actor))
        links: list[str] = []

        def link(token: str) -> str:
            links.append(token)
            return f"http://panel.test/reset/{token}"

        await rt.web_access.resets.request("user", str(BOB), link, ClientInfo("127.0.0.1", "test"))
        assert await rt.web_access.sessions.resolve(session) is not None

        mailhost(
            data_dir,
            env,
            "user",
            "passwd",
            str(BOB),
            "--password-stdin",
            stdin="another long secret\n",
        )

        assert await rt.web_access.sessions.resolve(session) is None
        with pytest.raises(NotFound):
            await rt.web_access.resets.check(links[0])
