"""One SMTP client connection for the SMTP tests, on plain asyncio streams.

Raw streams rather than smtplib, so a test can send any bytes (pipelined commands,
bare LFs, half a message) and read and check every reply line. Modules subclass
`Dialogue` for what only they need (AUTH and STARTTLS, timing a reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass

# Long enough for argon2 and a loaded CI machine; a hung server still fails the test.
REPLY_TIMEOUT = 20.0


def stuffed(content: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency: a line's leading dot is doubled."""
    return re.sub(rb"(?m)^\.", b"..", content)


@dataclass
class Dialogue:
    """One SMTP client connection: send a line, read the reply, check it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    hostname: str  # the server's name, as its greeting and EHLO reply must give it

    async def reply(self) -> list[str]:
        """One whole reply, every line of a multi-line one (RFC 5321 §4.2.1)."""
        lines: list[str] = []
        async with asyncio.timeout(REPLY_TIMEOUT):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise ConnectionError(f"connection closed after {lines}")
                lines.append(raw.decode("ascii").removesuffix("\r\n"))
                if len(lines[-1]) < 4 or lines[-1][3] != "-":
                    return lines

    async def greeting(self) -> None:
        assert await self.reply() == [f"220 {self.hostname} ESMTP"]

    async def say(self, command: str, expect: str) -> str:
        """Send `command`; its reply must be one line starting with `expect`."""
        self.writer.write(command.encode("ascii") + b"\r\n")
        [line] = await self.reply()
        assert line.startswith(expect), f"{command!r}: expected {expect!r}, got {line!r}"
        return line

    async def ehlo(self, name: str = "client.test") -> list[str]:
        """The EHLO keywords the server offers, after its name."""
        self.writer.write(f"EHLO {name}\r\n".encode("ascii"))
        lines = await self.reply()
        assert lines[0] == f"250-{self.hostname}"
        return [line[4:] for line in lines[1:]]

    async def data(self, content: bytes, expect: str) -> str:
        """DATA with `content` dot-stuffed; the final reply must start with `expect`."""
        await self.say("DATA", "354 ")
        self.writer.write(stuffed(content) + b".\r\n")
        [line] = await self.reply()
        assert line.startswith(expect), f"DATA: expected {expect!r}, got {line!r}"
        return line

    async def rest(self) -> list[str]:
        """Every line until the server closes the connection."""
        async with asyncio.timeout(REPLY_TIMEOUT):
            text = await self.reader.read()
        return text.decode("ascii").splitlines()

    async def close(self) -> None:
        self.writer.close()
        # The server may have closed first, or cut the TLS session short.
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()
