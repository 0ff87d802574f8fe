"""Request bodies are bounded before anything reads them: `[web] max_body_size`, then 413.

Pure ASGI, around the whole app (routes, dependencies, authentication, form
parsing), so no client, signed in or not, makes the server hold more than the
limit. A declared Content-Length over the limit is answered at once, unread. A
body of unknown length (chunked) is counted as the app receives it and answered
as soon as it goes over; the app is then told the client is gone. Whatever the
client still sends is read and dropped by uvicorn (it discards the body of a
request whose answer is complete) and is never kept: the connection stays usable,
and closing it instead would make the kernel reset it, which can destroy the 413
before the client reads it.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailhost.errors import BodyTooLarge
from mailhost.model.quantities import ByteSize
from mailhost.web.errors import error_json, is_api_path, status_for

log = logging.getLogger("mailhost.web")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: ByteSize, headers: Mapping[str, str]) -> None:
        self._app = app
        self._limit = limit.bytes
        self._error = BodyTooLarge(f"request body is larger than {_spaced(limit)}")
        self._headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._limit:
            await self._answer(scope, receive, send)
            return
        answer = functools.partial(self._answer, scope, receive, send)
        request = _CountedRequest(self._limit, receive, send, answer)
        try:
            await self._app(scope, request.receive, request.send)
        except Exception:
            if not request.refused:
                raise
            # The app failed on the disconnect it was handed; the client has its 413.
            log.debug("%s %s: body over the limit", scope["method"], scope["path"])

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = status_for(self._error)
        response: Response
        if is_api_path(scope["path"]):
            response = error_json(status, self._error.code, self._error.message, **self._headers)
        else:
            response = PlainTextResponse(
                f"{self._error.message}\n", status_code=status, headers=self._headers
            )
        await response(scope, receive, send)


class _CountedRequest:
    """One request whose body bytes are counted as the app receives them."""

    def __init__(
        self, limit: int, receive: Receive, send: Send, answer: Callable[[], Awaitable[None]]
    ) -> None:
        self._limit = limit
        self._receive = receive
        self._send = send
        self._answer = answer
        self._received = 0
        self._started = False  # the app has begun its answer
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self._received += len(message.get("body", b""))
        if self._received <= self._limit:
            return message
        self.refused = True
        if not self._started:  # otherwise the answer is under way: it can only be cut short
            await self._answer()
        # The app never sees the bytes over the limit: to it, the client has gone.
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 is the answer; whatever the app says after it is dropped
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    """The largest Content-Length declared (uvicorn refuses conflicting ones anyway)."""
    found: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            found = max(found or 0, int(value))
    return found


def _spaced(size: ByteSize) -> str:
    """The size as a sentence says it: 1MB as "1 MB"."""
    return re.sub(r"(?<=[0-9])(?=[A-Z])", " ", str(size), count=1)
