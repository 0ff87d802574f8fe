"""A MaildirStore per test, once per sync method, whose delivery agent is stopped after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailhost.settings import SyncMethod
from mailhost.storage.maildir import MaildirStore


@pytest.fixture(params=list(SyncMethod))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MaildirStore]:
    store = MaildirStore(tmp_path / "mail", request.param)
    yield store
    await store.close()
