"""SpoolDirectory against real files: durable layout, byte-exact reads, ids, removal."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhost.interfaces import Spool
from mailhost.storage.spool import SpoolDirectory, SpoolError


@pytest.fixture
def spool(tmp_path: Path) -> SpoolDirectory:
    return SpoolDirectory(tmp_path / "spool")


def test_spool_directory_is_a_spool(spool: SpoolDirectory) -> None:
    implementation: Spool = spool  # mypy checks the Protocol; the assert keeps it honest
    assert implementation is spool


async def test_written_body_is_in_msg_with_nothing_left_in_tmp(spool: SpoolDirectory) -> None:
    body = b"Subject: hi\r\n\r\nbody\r\n"
    ref = await spool.write(body)
    assert ref.size == 21
    assert (spool.root / "msg" / ref.message_id).read_bytes() == body
    assert os.listdir(spool.root / "tmp") == []
    assert os.stat(spool.root / "msg" / ref.message_id).st_mode & 0o777 == 0o600


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=5000))
def test_any_body_reads_back_byte_exact(tmp_path: Path, body: bytes) -> None:
    async def round_trip() -> bytes:
        spool = SpoolDirectory(tmp_path / "spool")
        ref = await spool.write(body)
        assert ref.size == len(body)
        return await spool.read(ref.message_id)

    assert asyncio.run(round_trip()) == body


async def test_ids_are_unique_and_listed_oldest_first(spool: SpoolDirectory) -> None:
    refs = await asyncio.gather(*(spool.write(b"x" * n) for n in range(50)))
    ids = [ref.message_id for ref in refs]
    assert len(set(ids)) == 50
    listed = await spool.ids()
    assert sorted(listed) == sorted(ids)
    stamps = [int(message_id.split("-")[0], 16) for message_id in listed]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("durable", [True, False])
async def test_remove_deletes_and_is_idempotent(spool: SpoolDirectory, durable: bool) -> None:
    ref = await spool.write(b"bye")
    await spool.remove(ref.message_id, durable=durable)
    await spool.remove(ref.message_id, durable=durable)  # the second of two finishing workers
    assert await spool.ids() == []
    with pytest.raises(SpoolError, match="no spooled message"):
        await spool.read(ref.message_id)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "", "abc", "0-0", "67a1b2c3-XYZ"])
async def test_ids_that_are_not_ours_are_refused(spool: SpoolDirectory, bad: str) -> None:
    with pytest.raises(SpoolError, match="not a spool message id"):
        await spool.read(bad)
    with pytest.raises(SpoolError, match="not a spool message id"):
        await spool.remove(bad)


async def test_empty_spool_lists_nothing(spool: SpoolDirectory) -> None:
    assert await spool.ids() == []
