"""MaildirStore against real files: durability layout, byte-exact reads, uids, order, deletion."""

from __future__ import annotations

import asyncio
import os
import random
import stat
import tempfile
from contextlib import aclosing, suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhost.interfaces import MailStore
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import MailboxRef
from mailhost.storage.maildir import CHUNK, MaildirStore, MessageGone

BOB = MailboxRef(1, EmailAddress.hosted("bob@example.com"), "b0" * 16)
ALICE = MailboxRef(2, EmailAddress.hosted("alice@example.org"), "a1" * 16)


async def chunks_of(store: MaildirStore, mailbox: MailboxRef, uid: str) -> list[bytes]:
    async with aclosing(store.read(mailbox, uid)) as stream:
        return [chunk async for chunk in stream]


async def read_all(store: MaildirStore, mailbox: MailboxRef, uid: str) -> bytes:
    return b"".join(await chunks_of(store, mailbox, uid))


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: dot\r\n\r\nline\r\n.\r\n",
        b"\r\n.\r\n",
        bytes(range(256)) * 3,
        b"",
        b"no final newline",
        b"bare\nLF and bare\rCR\x00NUL",
    ],
    ids=["dot-line", "only-dot", "8bit", "empty", "no-eol", "bare-lf-cr-nul"],
)
async def test_delivered_message_reads_back_byte_exact(store: MaildirStore, message: bytes) -> None:
    stored = await store.deliver(BOB, message)
    assert stored.size == len(message)
    assert await read_all(store, BOB, stored.uid) == message
    assert await store.list(BOB) == [stored]


async def test_ten_megabyte_message_is_streamed_in_many_bounded_chunks(
    store: MaildirStore,
) -> None:
    message = random.Random(7).randbytes(10 * 1024 * 1024)
    stored = await store.deliver(BOB, message)
    chunks = await chunks_of(store, BOB, stored.uid)
    assert len(chunks) >= len(message) // CHUNK
    assert all(0 < len(chunk) <= CHUNK for chunk in chunks)
    assert b"".join(chunks) == message
    assert (await store.list(BOB))[0].size == len(message)


async def test_maildir_lives_under_domain_and_local_part_and_storage_key_with_private_modes(
    store: MaildirStore, tmp_path: Path
) -> None:
    stored = await store.deliver(BOB, b"hello\r\n")
    maildir = store.maildir_path(BOB)
    assert maildir == tmp_path / "mail" / "example.com" / f"bob.{'b0' * 16}"
    for sub in ("tmp", "new", "cur"):
        assert stat.S_IMODE((maildir / sub).stat().st_mode) == 0o700
    assert stat.S_IMODE((maildir / "new" / stored.uid).stat().st_mode) == 0o600
    assert (maildir / "new" / stored.uid).read_bytes() == b"hello\r\n"


async def test_delivery_leaves_nothing_in_tmp(store: MaildirStore) -> None:
    for size in (0, 10, 100_000):
        await store.deliver(BOB, b"x" * size)
    assert os.listdir(store.maildir_path(BOB) / "tmp") == []
    assert len(os.listdir(store.maildir_path(BOB) / "new")) == 3


async def test_uid_is_the_maildir_name_and_fits_a_pop3_uidl(store: MaildirStore) -> None:
    stored = await store.deliver(BOB, b"m" * 123_456)
    seconds, unique, rest = stored.uid.split(".", 2)
    assert seconds.isdigit()
    assert unique.startswith("M") and "P" in unique and "Q" in unique and "R" in unique
    assert rest.endswith(",S=123456")
    # RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
    assert 1 <= len(stored.uid) <= 70
    assert all(0x21 <= ord(c) <= 0x7E for c in stored.uid)


async def test_uids_are_stable_across_store_instances(tmp_path: Path) -> None:
    first = MaildirStore(tmp_path)
    delivered = [await first.deliver(BOB, f"message {i}\r\n".encode()) for i in range(5)]
    await first.close()
    again = MaildirStore(tmp_path)
    assert await again.list(BOB) == delivered
    assert await read_all(again, BOB, delivered[3].uid) == b"message 3\r\n"


async def test_messages_are_listed_in_delivery_order(store: MaildirStore) -> None:
    delivered = [await store.deliver(BOB, b"%d" % i) for i in range(40)]
    assert [m.uid for m in await store.list(BOB)] == [m.uid for m in delivered]


async def test_concurrent_deliveries_all_arrive_with_distinct_uids(store: MaildirStore) -> None:
    delivered = await asyncio.gather(*(store.deliver(BOB, b"%d" % i) for i in range(30)))
    assert len({m.uid for m in delivered}) == 30
    assert sorted(await store.list(BOB), key=lambda m: m.uid) == sorted(
        delivered, key=lambda m: m.uid
    )


async def test_mailboxes_are_separate(store: MaildirStore) -> None:
    for_bob = await store.deliver(BOB, b"to bob")
    for_alice = await store.deliver(ALICE, b"to alice")
    assert await store.list(BOB) == [for_bob]
    assert await store.list(ALICE) == [for_alice]
    with pytest.raises(MessageGone):
        await read_all(store, ALICE, for_bob.uid)


async def test_delete_frees_the_bytes_once(store: MaildirStore) -> None:
    kept = await store.deliver(BOB, b"a" * 10)
    gone = [await store.deliver(BOB, b"b" * size) for size in (100, 1000)]
    uids = [m.uid for m in gone]
    assert await store.delete(BOB, uids) == 1100
    assert await store.delete(BOB, uids) == 0
    assert await store.list(BOB) == [kept]
    assert await store.usage(BOB) == 10
    with pytest.raises(MessageGone):
        await read_all(store, BOB, uids[0])


async def test_delete_of_unknown_or_unsafe_uids_frees_nothing(store: MaildirStore) -> None:
    kept = await store.deliver(BOB, b"keep me")
    assert await store.delete(BOB, ["nope", "../new/" + kept.uid, ".", ""]) == 0
    assert await store.list(BOB) == [kept]


async def test_usage_is_the_sum_of_listed_sizes(store: MaildirStore) -> None:
    assert await store.usage(BOB) == 0
    assert not store.maildir_path(BOB).exists()  # usage counts, it does not create
    sizes = [0, 1, 5000, 70_000]
    for size in sizes:
        await store.deliver(BOB, b"z" * size)
    assert await store.usage(BOB) == sum(sizes) == sum(m.size for m in await store.list(BOB))


async def test_first_list_creates_an_empty_maildir(store: MaildirStore) -> None:
    assert await store.list(BOB) == []
    for sub in ("tmp", "new", "cur"):
        assert (store.maildir_path(BOB) / sub).is_dir()


async def test_file_left_in_tmp_by_a_crash_is_never_seen(store: MaildirStore) -> None:
    delivered = await store.deliver(BOB, b"complete")
    half = "1700000000.M000001P1Q1R00000000.crashed,S=999"
    (store.maildir_path(BOB) / "tmp" / half).write_bytes(b"half a mess")
    assert await store.list(BOB) == [delivered]
    assert await store.usage(BOB) == len(b"complete")
    with pytest.raises(MessageGone):
        await read_all(store, BOB, half)


async def test_message_moved_to_cur_with_flags_keeps_uid_and_size(store: MaildirStore) -> None:
    stored = await store.deliver(BOB, b"seen by a client")
    maildir = store.maildir_path(BOB)
    os.rename(maildir / "new" / stored.uid, maildir / "cur" / f"{stored.uid}:2,S")
    assert await store.list(BOB) == [stored]
    assert await read_all(store, BOB, stored.uid) == b"seen by a client"
    assert await store.delete(BOB, [stored.uid]) == len(b"seen by a client")
    assert os.listdir(maildir / "cur") == []


async def test_foreign_names_without_size_are_sized_and_ordered(store: MaildirStore) -> None:
    await store.list(BOB)
    cur = store.maildir_path(BOB) / "cur"
    (cur / "1000000001.M5P1.old:2,").write_bytes(b"older, later in the second")
    (cur / "1000000001.M40P1.old:2,").write_bytes(b"unpadded M40 comes after M5")
    (cur / "999999999.P1.ancient").write_bytes(b"oldest")
    (cur / ".hidden").write_bytes(b"not mail")
    listed = await store.list(BOB)
    assert [m.uid for m in listed] == [
        "999999999.P1.ancient",
        "1000000001.M5P1.old",
        "1000000001.M40P1.old",
    ]
    assert [m.size for m in listed] == [6, 26, 27]
    assert await store.usage(BOB) == 59


async def test_unknown_uid_raises_message_gone(store: MaildirStore) -> None:
    await store.deliver(BOB, b"something")
    for uid in ("1.M1P1Q1R0.nowhere,S=1", "../tmp", ".mailhost.lock", "a:2,S", ""):
        with pytest.raises(MessageGone):
            await read_all(store, BOB, uid)


async def test_message_deleted_while_being_read_is_read_to_the_end(store: MaildirStore) -> None:
    message = random.Random(1).randbytes(5 * CHUNK + 17)
    stored = await store.deliver(BOB, message)
    async with aclosing(store.read(BOB, stored.uid)) as stream:
        first = await anext(stream)
        assert await store.delete(BOB, [stored.uid]) == len(message)
        rest = [chunk async for chunk in stream]
    assert first + b"".join(rest) == message


async def test_abandoned_read_closes_its_file(store: MaildirStore) -> None:
    stored = await store.deliver(BOB, b"q" * (3 * CHUNK))
    before = len(os.listdir("/proc/self/fd"))
    async with aclosing(store.read(BOB, stored.uid)) as stream:
        await anext(stream)
        assert len(os.listdir("/proc/self/fd")) == before + 1
    assert len(os.listdir("/proc/self/fd")) == before


async def test_failed_delivery_leaves_no_file_behind(store: MaildirStore) -> None:
    maildir = store.maildir_path(BOB)
    for sub in ("tmp", "cur"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new").write_bytes(b"")  # new/ is not a directory: the link must fail
    with pytest.raises(NotADirectoryError):
        await store.deliver(BOB, b"lost")
    assert os.listdir(maildir / "tmp") == []


@pytest.mark.parametrize(
    ("local", "domain"),
    [("../escape", "example.com"), ("a/b", "example.com"), (".hidden", "example.com"),
     ("bob", ".."), ("bob", "ex/ample.com")],
)  # fmt: skip
async def test_unsafe_directory_names_are_refused(
    store: MaildirStore, local: str, domain: str
) -> None:
    mailbox = MailboxRef(9, EmailAddress(local, DomainName(domain)), "c2" * 16)
    with pytest.raises(ValueError, match="cannot name a maildir directory"):
        store.maildir_path(mailbox)
    with pytest.raises(ValueError, match="cannot name a maildir directory"):
        await store.deliver(mailbox, b"x")
    assert not store.root.exists()


async def test_a_new_mailbox_at_the_same_address_never_sees_the_old_ones_mail(
    store: MaildirStore,
) -> None:
    await store.deliver(BOB, b"for the first owner\r\n")
    successor = MailboxRef(3, BOB.address, "d3" * 16)  # same address, its own key
    assert await store.list(successor) == []
    assert await store.usage(successor) == 0
    assert len(await store.list(BOB)) == 1


@pytest.mark.parametrize("key", ["", "B0" * 16, "b0" * 15, "../" + "b" * 29, "b0" * 16 + "/x"])
async def test_storage_keys_that_are_not_32_hex_digits_are_refused(
    store: MaildirStore, key: str
) -> None:
    with pytest.raises(ValueError, match="is not 32 hex digits"):
        store.maildir_path(MailboxRef(9, BOB.address, key))
    assert not store.root.exists()


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.binary(max_size=200)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 20), max_size=4)),
    ),
    max_size=12,
)


async def _replay(root: Path, operations: list[tuple[str, object]]) -> None:
    store = MaildirStore(root)
    try:
        model = await _check_against_model(store, operations)
    finally:
        await store.close()
    fresh = MaildirStore(root)  # another instance sees the same messages, byte for byte
    assert [m.uid for m in await fresh.list(BOB)] == [uid for uid, _ in model]
    for uid, body in model:
        assert await read_all(fresh, BOB, uid) == body


async def _check_against_model(
    store: MailStore, operations: list[tuple[str, object]]
) -> list[tuple[str, bytes]]:
    """Replay `operations`, comparing list and usage with a model after each; the final model."""
    model: list[tuple[str, bytes]] = []
    ever: list[str] = []
    for kind, argument in operations:
        if kind == "deliver":
            assert isinstance(argument, bytes)
            stored = await store.deliver(BOB, argument)
            model.append((stored.uid, argument))
            ever.append(stored.uid)
        else:
            assert isinstance(argument, list)
            uids = {ever[i % len(ever)] for i in argument} if ever else set()
            expected = sum(len(body) for uid, body in model if uid in uids)
            assert await store.delete(BOB, uids) == expected
            model = [(uid, body) for uid, body in model if uid not in uids]
        listed = await store.list(BOB)
        assert [(m.uid, m.size) for m in listed] == [(uid, len(body)) for uid, body in model]
        assert await store.usage(BOB) == sum(len(body) for _, body in model)
    return model


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_any_deliveries_and_deletions_keep_list_and_usage_equal_to_a_model(
    tmp_path: Path, operations: list[tuple[str, object]]
) -> None:
    asyncio.run(_replay(Path(tempfile.mkdtemp(dir=tmp_path)), operations))


async def test_read_cancelled_mid_chunk_still_closes_its_file(store: MaildirStore) -> None:
    stored = await store.deliver(BOB, b"c" * (40 * CHUNK))
    before = len(os.listdir("/proc/self/fd"))
    for spins in range(1, 9):
        stream = store.read(BOB, stored.uid)
        await anext(stream)
        pending = asyncio.ensure_future(anext(stream))
        for _ in range(spins):
            await asyncio.sleep(0)  # the next chunk is being read in a thread
        pending.cancel()
        with suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
        await stream.aclose()
    for _ in range(200):
        if len(os.listdir("/proc/self/fd")) == before:
            break
        await asyncio.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
async def test_messages_are_read_in_full_chunks_up_to_their_end(
    store: MaildirStore, size: int
) -> None:
    message = bytes(range(256)) * (size // 256) + b"m" * (size % 256)
    stored = await store.deliver(BOB, message)
    chunks = await chunks_of(store, BOB, stored.uid)
    assert b"".join(chunks) == message
    # Every chunk but the last is a full one, and none is empty.
    assert [len(chunk) for chunk in chunks[:-1]] == [CHUNK] * (len(chunks) - 1)
    assert all(chunks)
