"""Request bodies over `[web] max_body_size` (1 MB by default) get 413 before anything reads
them, signed in or not, against the real app in the real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from mailhost.model.actors import ProviderActor
from mailhost.runtime import Runtime
from mailhost.web.app import create_web_app
from mailhost.web.server import start_web_server
from tests.web.conftest import PW, World, csrf_of

LIMIT = 1_000_000  # the default, 1 MB
TOO_LARGE = {"code": "body_too_large", "message": "request body is larger than 1 MB"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def base_url(world: World) -> AsyncIterator[str]:
    """The real app on a real port (the world's accounts in it)."""
    server = await start_web_server(create_web_app(world.runtime), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def pieces(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """`body` with no length given: httpx sends it chunked."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def raw_request(base_url: str, head: str, body: bytes = b"") -> tuple[str, bytes]:
    """Send a request head (and maybe the start of a body) and read the answer, without
    ever finishing the body: an answer can only come from a server that did not wait for it."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        status_and_headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        text = status_and_headers.decode()
        length = next(
            int(line.split(":", 1)[1])
            for line in text.split("\r\n")
            if line.lower().startswith("content-length:")
        )
        return text, await asyncio.wait_for(reader.readexactly(length), 30)
    finally:
        writer.close()


async def test_a_declared_length_over_the_limit_is_refused_at_once_unread(base_url: str) -> None:
    head = (
        "POST /api/v1/plans HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        "Content-Length: 150000000\n"
    )
    status, body = await raw_request(base_url, head)  # not one byte of the 150 MB sent
    assert status.startswith("HTTP/1.1 413 ")
    assert json.loads(body) == TOO_LARGE
    # The same through an ordinary client that sends its whole (declared) body.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answer = await client.post("/api/v1/plans", content=b" " * (2 * LIMIT), headers=JSON)
    assert (answer.status_code, answer.json()) == (413, TOO_LARGE)


async def test_a_chunked_body_is_refused_as_soon_as_it_goes_over(base_url: str) -> None:
    head = (
        "POST /api/v1/plans HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\n"
    )
    over = LIMIT + 1
    # One chunk one byte over the limit and no last chunk: the body never ends.
    status, body = await raw_request(base_url, head, f"{over:x}\r\n".encode() + b" " * over)
    assert status.startswith("HTTP/1.1 413 ")
    assert json.loads(body) == TOO_LARGE


PANEL_TOO_LARGE = (413, "text/plain", "request body is larger than 1 MB\n")
API_TOO_LARGE = (413, "application/json", "")  # the body: TOO_LARGE


@pytest.mark.parametrize(
    ("path", "content_type", "streamed", "declared"),
    [
        ("/api/v1/plans", "application/json", API_TOO_LARGE, API_TOO_LARGE),
        ("/login/customer", "application/x-www-form-urlencoded", PANEL_TOO_LARGE, PANEL_TOO_LARGE),
        # Autodiscover reads at most 64 kB of its own accord: a stream stops there first.
        ("/autodiscover/autodiscover.xml", "text/xml", (422, "text/html", ""), PANEL_TOO_LARGE),
        # Nothing reads a body nobody asked for: it is dropped as it arrives.
        ("/no/such/page", "text/plain", (404, "text/html", ""), PANEL_TOO_LARGE),
    ],
)
async def test_every_path_refuses_a_body_over_the_limit_unauthenticated(
    base_url: str,
    path: str,
    content_type: str,
    streamed: tuple[int, str, str],
    declared: tuple[int, str, str],
) -> None:
    headers = {"Content-Type": content_type}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        chunked = await client.post(path, content=pieces(b" " * (3 * LIMIT)), headers=headers)
        sized = await client.post(path, content=b" " * (2 * LIMIT), headers=headers)
    assert "content-length" not in chunked.request.headers  # sent chunked: length unknown
    assert sized.request.headers["content-length"] == str(2 * LIMIT)
    for answer, (status, media_type, text) in ((chunked, streamed), (sized, declared)):
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith(media_type)
        assert answer.headers["x-frame-options"] == "DENY"
        if media_type == "application/json":
            assert answer.json() == TOO_LARGE
        elif text:
            assert answer.text == text


async def test_a_body_just_under_the_limit_still_works(world: World, base_url: str) -> None:
    rt: Runtime = world.runtime
    _, token = await rt.web_access.api_tokens.create(ProviderActor("root"), "tests")
    plan = json.dumps({"name": "Roomy", "max_domains": 3}).encode()
    padded = plan + b" " * (LIMIT - len(plan))  # exactly the limit: JSON allows the spaces
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        made = await client.post(
            "/api/v1/plans",
            content=padded,
            headers={**JSON, "Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
        assert made.json()["name"] == "Roomy"
        streamed = await client.post("/api/v1/plans", content=pieces(padded), headers=JSON)
        assert streamed.status_code == 401  # reached authentication: not refused for size
        form = await client.get("/login/customer")
        fields = {"csrf": csrf_of(form.text), "login": "acme", "password": PW}
        filler = LIMIT - len(str(httpx.QueryParams(fields))) - len("&filler=")
        login = await client.post("/login/customer", data={**fields, "filler": "x" * filler})
    assert login.request.headers["content-length"] == str(LIMIT)
    assert (login.status_code, login.headers["location"]) == (303, "/customer/")
